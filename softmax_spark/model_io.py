"""Model directory format (version 1). Never unpickles: JSON plus ``np.load(allow_pickle=False)``.

Layout of ``<model-dir>``::

    metadata.json     {"format": "softmax_spark.model", "format_version": 1, "classes": [...],
                       "n_classes": C, "n_features": D, "l2": λ, "fit_intercept": bool,
                       "options": {...}, "data_summary": {...}, "extra": {...}}
    coef.npy          float64 array of shape (C, D)
    intercept.npy     float64 array of shape (C,)
    history.json      list of per-iteration records
    mllib/            (optional) the same model in Spark MLlib's LogisticRegressionModel layout

``extra`` holds any other top-level keys of ``model.metadata`` (e.g. ``stop_reason``), so a
save/load round trip restores the metadata exactly.

The directory is published atomically (temporary sibling, then rename). ``load_model`` validates
the format, version, shapes and finiteness before building the model.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .atomic import atomic_directory
from .errors import ModelFormatError
from .model import SoftmaxModel

FORMAT = "softmax_spark.model"
FORMAT_VERSION = 1

_METADATA_KEYS = ("l2", "fit_intercept", "options", "data_summary")

__all__ = ["save_model", "load_model", "write_model_files", "FORMAT", "FORMAT_VERSION"]


def write_model_files(model: SoftmaxModel, directory: str) -> None:
    """Write the model's files into an existing (temporary) directory."""
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "classes": list(model.classes),
        "n_classes": model.n_classes,
        "n_features": model.n_features,
        "l2": model.metadata.get("l2"),
        "fit_intercept": model.metadata.get("fit_intercept", True),
        "options": model.metadata.get("options", {}),
        "data_summary": model.metadata.get("data_summary", {}),
        "extra": {k: v for k, v in model.metadata.items() if k not in _METADATA_KEYS},
    }
    with open(os.path.join(directory, "metadata.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True, default=_json_default)
    np.save(os.path.join(directory, "coef.npy"), model.coef, allow_pickle=False)
    np.save(os.path.join(directory, "intercept.npy"), model.intercept, allow_pickle=False)
    with open(os.path.join(directory, "history.json"), "w") as f:
        json.dump(model.history, f, default=_json_default)


def save_model(model: SoftmaxModel, path: str, overwrite: bool = False, extra_writer=None) -> None:
    """Write ``model`` to the directory ``path`` atomically.

    ``extra_writer(tmp_dir)``, if given, adds more files (e.g. the MLlib copy) before publication.
    """
    with atomic_directory(path, overwrite=overwrite, what="model directory") as tmp:
        write_model_files(model, tmp)
        if extra_writer is not None:
            extra_writer(tmp)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def read_json(path: str, what: str):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ModelFormatError(f"{what}: {path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{what}: {path} is not valid JSON ({exc})") from None


def load_array(path: str, shape: tuple, what: str) -> np.ndarray:
    """np.load with pickles refused; checks dtype float64, ``shape`` and finiteness."""
    try:
        # our own handle, closed here: an .npz (zip) would otherwise stay open inside np.load's NpzFile
        with open(path, "rb") as f:
            arr = np.load(f, allow_pickle=False)
    except FileNotFoundError:
        raise ModelFormatError(f"{what}: {path} is missing") from None
    except ValueError as exc:  # object arrays need pickle: refused
        raise ModelFormatError(f"{what}: {path} is not a plain numeric .npy array ({exc})") from None
    except Exception as exc:  # truncated or garbage file
        raise ModelFormatError(f"{what}: {path} is not a readable .npy file ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float64:
        raise ModelFormatError(f"{what}: {path} holds {getattr(arr, 'dtype', type(arr))}, expected float64")
    if arr.shape != tuple(shape):
        raise ModelFormatError(f"{what}: {path} has shape {arr.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(arr)):
        raise ModelFormatError(f"{what}: {path} holds NaN or infinite values")
    return arr


def load_model(path: str) -> SoftmaxModel:
    """Read a model directory written by ``save_model``. Raises ``ModelFormatError`` (an
    ``InputError``) with one clear line when ``path`` is not such a directory."""
    if not os.path.isdir(path):
        raise ModelFormatError(f"model directory {path} does not exist or is not a directory")
    what = f"model directory {path}"
    meta = read_json(os.path.join(path, "metadata.json"), what)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFormatError(f"{what} is not a softmax_spark model (metadata.json format != {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"{what} has format_version {meta.get('format_version')!r}; this version reads {FORMAT_VERSION}"
        )
    classes = meta.get("classes")
    n_classes, n_features = meta.get("n_classes"), meta.get("n_features")
    if (
        not isinstance(classes, list)
        or not isinstance(n_classes, int)
        or not isinstance(n_features, int)
        or len(classes) != n_classes
        or n_classes < 2
        or n_features < 1
    ):
        raise ModelFormatError(f"{what}: metadata.json has inconsistent classes / n_classes / n_features")
    coef = load_array(os.path.join(path, "coef.npy"), (n_classes, n_features), what)
    intercept = load_array(os.path.join(path, "intercept.npy"), (n_classes,), what)
    history_path = os.path.join(path, "history.json")
    history = read_json(history_path, what) if os.path.exists(history_path) else []
    extra = meta.get("extra", {})
    if not isinstance(extra, dict):
        raise ModelFormatError(f"{what}: metadata.json 'extra' is not an object")
    metadata = {**extra, **{k: meta.get(k) for k in _METADATA_KEYS}}
    try:
        return SoftmaxModel(coef, intercept, classes, history=history, metadata=metadata)
    except ValueError as exc:
        raise ModelFormatError(f"{what}: {exc}") from None
