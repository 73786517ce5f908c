"""Model directory format (version 1). Never unpickles: JSON plus ``np.load(allow_pickle=False)``.

Layout of ``<model-dir>``::

    metadata.json     {"format": "softmax_spark.model", "format_version": 1, "classes": [...],
                       "n_classes": C, "n_features": D, "l2": λ, "fit_intercept": bool,
                       "columns": {...}, "options": {...}, "data_summary": {...}, "extra": {...}}
    coef.npy          float64 array of shape (C, D)
    intercept.npy     float64 array of shape (C,)
    history.json      list of per-iteration records
    mllib/            (optional) the same model in Spark MLlib's LogisticRegressionModel layout

``columns`` (written since it exists; ``core.model_record``) names the training columns under the
model's own names; ``options`` records the job's options as it spelt them. ``extra`` holds any
other top-level keys of ``model.metadata`` (e.g. ``stop_reason``), so a
save/load round trip restores the metadata exactly.

``<model-dir>`` is any URI of ``softmax_spark.io.storage`` (a local path, ``file:``, ``hdfs://``,
``s3a://``, ``viewfs://``, …). The files are written into a local temporary directory and
published atomically (``storage.atomic_directory``); a remote model is read by copying its small
files to a local temporary directory first. ``load_model`` validates the format, version, shapes
and finiteness before building the model.

The format registry (``FORMATS``: ``ModelFormat`` records) is the one place that tells the model
directories apart (``detect_format``) and reads or writes them: our own format (this module), a
saved Spark ML ``SoftmaxRegressionModel`` (``spark_ml_io``) and Spark MLlib's
``LogisticRegressionModel`` (``mllib_io``). ``load_any_model`` (warm starts), ``load_scoring_model``
(``jobs/evaluate.py``) and ``read_model`` accept any of them.
"""

from __future__ import annotations

import json
import logging
import os
import stat

from dataclasses import dataclass
from typing import Callable

import numpy as np

from softmax_spark.core.errors import InputError, ModelFormatError
from softmax_spark.core.labels import class_key, value_family  # labels compare as everywhere: 1 == 1.0, "1" != 1, True is not 1
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.io import spark_ml_io, storage
from softmax_spark.io.mllib_io import read_mllib_model, write_mllib_model
from softmax_spark.io.mllib_layout import MLLIB_LR_MODEL_CLASS
from softmax_spark.io.publish import recover

FORMAT = "softmax_spark.model"
FORMAT_VERSION = 1

_METADATA_KEYS = ("l2", "fit_intercept", "options", "data_summary")
# top-level sections under the model's own names, written when the model has them (``core.model_record``)
_OWN_SECTIONS = ("columns",)

__all__ = ["save_model", "load_model", "load_any_model", "load_scoring_model", "model_dir_kind", "write_model_files",
           "FORMAT", "FORMAT_VERSION", "ModelFormat", "FORMATS", "register", "detect_format", "read_model",
           "is_mllib_model_dir", "parse_class_labels"]

log = logging.getLogger("softmax_spark")

MODEL_FILES = ("metadata.json", "coef.npy", "intercept.npy", "history.json")


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
        "extra": {k: v for k, v in model.metadata.items() if k not in _METADATA_KEYS + _OWN_SECTIONS},
    }
    meta.update({k: model.metadata[k] for k in _OWN_SECTIONS if k in model.metadata})
    with open(os.path.join(directory, "metadata.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True, default=_json_default)
    np.save(os.path.join(directory, "coef.npy"), model.coef, allow_pickle=False)
    np.save(os.path.join(directory, "intercept.npy"), model.intercept, allow_pickle=False)
    with open(os.path.join(directory, "history.json"), "w") as f:
        json.dump(model.history, f, default=_json_default)


def save_model(model: SoftmaxModel, path: str, overwrite: bool = False, extra_writer=None, spark=None) -> None:
    """Write ``model`` to the directory ``path`` (any storage URI) atomically.

    ``extra_writer(tmp_dir)``, if given, adds more files (e.g. the MLlib copy) to the local
    temporary directory before publication. ``spark``: the session for a non-local URI (default:
    the active one). Raises ``InputError`` when ``path`` exists and not ``overwrite``, or when
    its filesystem cannot be reached.
    """
    path = os.fspath(path)
    with storage.atomic_directory(path, overwrite=overwrite, what="model directory", spark=spark) as tmp:
        write_model_files(model, tmp)
        if extra_writer is not None:
            extra_writer(tmp)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _regular_file(path: str, what: str, shown: str) -> int:
    """The size of the local ``path``; ``ModelFormatError`` unless it is a regular file (a FIFO
    would block the reader forever, a device would never end)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ModelFormatError(f"{what}: {shown} is missing") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelFormatError(f"{what}: {shown} is not a regular file")
    return info.st_size


def read_json(path: str, what: str, shown: str | None = None):
    """JSON of the local file ``path``; ``shown`` is the name used in errors (default ``path``)."""
    shown = shown or path
    _regular_file(path, what, shown)
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(f"{what}: {shown} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{what}: {shown} is not valid JSON ({exc})") from None


def load_array(path: str, shape: tuple, what: str, shown: str | None = None) -> np.ndarray:
    """np.load of the local ``path`` with pickles refused; checks dtype float64, ``shape`` and
    finiteness. ``shown`` is the name used in errors (default ``path``)."""
    shown = shown or path
    size = _regular_file(path, what, shown)
    if size < 8 * int(np.prod(shape, dtype=object)):  # never allocate what the file cannot hold
        raise ModelFormatError(f"{what}: {shown} has {size} bytes, too few for a float64 array of shape {tuple(shape)}")
    try:
        # our own handle, closed here: an .npz (zip) would otherwise stay open inside np.load's NpzFile
        with open(path, "rb") as f:
            arr = np.load(f, allow_pickle=False)
    except FileNotFoundError:
        raise ModelFormatError(f"{what}: {shown} is missing") from None
    except ValueError as exc:  # object arrays need pickle: refused
        raise ModelFormatError(f"{what}: {shown} is not a plain numeric .npy array ({exc})") from None
    except Exception as exc:  # truncated or garbage file
        raise ModelFormatError(f"{what}: {shown} is not a readable .npy file ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float64:
        raise ModelFormatError(f"{what}: {shown} holds {getattr(arr, 'dtype', type(arr))}, expected float64")
    if arr.shape != tuple(shape):
        raise ModelFormatError(f"{what}: {shown} has shape {arr.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(arr)):
        raise ModelFormatError(f"{what}: {shown} holds NaN or infinite values")
    return arr


def load_model(path: str, spark=None) -> SoftmaxModel:
    """Read a model directory written by ``save_model`` from any storage URI (a remote one is
    copied to a local temporary directory first; ``spark`` defaults to the active session).

    Raises ``ModelFormatError`` (an ``InputError``) with one clear line when ``path`` is not such
    a directory; ``InputError`` when its filesystem cannot be reached."""
    path = os.fspath(path)
    what = f"model directory {path}"
    for attempt in range(2):
        try:
            with storage.local_copy(path, spark, names=MODEL_FILES, what="model directory") as local:
                if not os.path.isdir(local):
                    raise FileNotFoundError(local)
                return _load_local(local, path, what)
        except FileNotFoundError:
            # a replacement killed between its two renames left the old model under a hidden name
            if attempt == 0 and _recovered(path, spark):
                continue
            raise ModelFormatError(f"{what} does not exist or is not a directory") from None
    raise AssertionError("unreachable")


def _recovered(path: str, spark) -> bool:
    try:
        return recover(path, storage.filesystem(path, spark))
    except OSError:
        return False


def _load_local(local: str, path: str, what: str) -> SoftmaxModel:
    """The model in the local directory ``local``; errors name files under ``path``."""

    def files(name):
        return os.path.join(local, name), storage.join(path, name)

    local_meta, shown_meta = files("metadata.json")
    meta = read_json(local_meta, what, shown_meta)
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
    if not all(isinstance(c, (str, int, float)) and c is not None for c in classes):  # bool is an int
        raise ModelFormatError(f"{what}: metadata.json classes must be strings or numbers, not lists or objects")
    local_coef, shown_coef = files("coef.npy")
    coef = load_array(local_coef, (n_classes, n_features), what, shown_coef)
    local_intercept, shown_intercept = files("intercept.npy")
    intercept = load_array(local_intercept, (n_classes,), what, shown_intercept)
    local_history, shown_history = files("history.json")
    history = read_json(local_history, what, shown_history) if os.path.exists(local_history) else []
    extra = meta.get("extra", {})
    if not isinstance(extra, dict):
        raise ModelFormatError(f"{what}: metadata.json 'extra' is not an object")
    metadata = {**extra, **{k: meta.get(k) for k in _METADATA_KEYS}}
    metadata.update({k: meta[k] for k in _OWN_SECTIONS if k in meta})
    try:
        return SoftmaxModel(coef, intercept, classes, history=history, metadata=metadata)
    except (ValueError, TypeError) as exc:
        raise ModelFormatError(f"{what}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# the format registry: every model directory we read or write, detected in one place
# ---------------------------------------------------------------------------------------------
ML_MODEL_CLASS = spark_ml_io.MODEL_CLASS  # a saved softmax_spark.ml.SoftmaxRegressionModel
MLLIB_MODEL_CLASS = MLLIB_LR_MODEL_CLASS  # Spark MLlib's LogisticRegressionModel


@dataclass(frozen=True)
class ModelFormat:
    """One model-directory layout: how to recognise it, read it and (when we can) write it.

    name            : what ``model_dir_kind`` answers ("softmax_spark", "ml", "mllib")
    description     : for log lines and errors
    read            : read(path, spark=None) -> SoftmaxModel, from any storage URI
    write           : write(model, path, spark=None) into a new directory, or None when this layer
                      cannot write it (a Spark ML model needs its Params: ``SoftmaxRegressionModel.write()``)
    marker          : a file whose presence identifies the format (``metadata.json``), or None
    spark_ml_class  : the ``class`` its Spark ML-persistence metadata records, or None
    records_classes : False when the directory carries no label names (MLlib: label indices only)
    """

    name: str
    description: str
    read: Callable
    write: Callable | None = None
    marker: str | None = None
    spark_ml_class: str | None = None
    records_classes: bool = True


FORMATS: dict[str, ModelFormat] = {}


def register(fmt: ModelFormat) -> ModelFormat:
    """Add ``fmt`` to ``FORMATS`` (a new output format = one module with its reader/writer plus
    one ``register`` call here). Raises ``ValueError`` for a name or marker already taken."""
    for other in FORMATS.values():
        if other.name == fmt.name or (fmt.marker and other.marker == fmt.marker) or (
                fmt.spark_ml_class and other.spark_ml_class == fmt.spark_ml_class):
            raise ValueError(f"model format {fmt.name!r} clashes with the registered {other.name!r}")
    FORMATS[fmt.name] = fmt
    return fmt


register(ModelFormat("softmax_spark", "softmax_spark model", read=load_model, write=save_model, marker="metadata.json"))
register(ModelFormat("ml", ML_MODEL_CLASS, read=spark_ml_io.read_spark_ml_model, spark_ml_class=ML_MODEL_CLASS))
register(ModelFormat("mllib", "MLlib LogisticRegressionModel", read=read_mllib_model, write=write_mllib_model,
                     spark_ml_class=MLLIB_MODEL_CLASS, records_classes=False))


def _spark_ml_class(path: str, spark) -> str | None:
    """The ``class`` in ``<path>/metadata/part-*`` (Spark ML persistence, what
    ``DefaultParamsWriter`` writes): None when there is no ``metadata/`` directory; raises
    ``ModelFormatError`` when it holds no readable JSON."""
    meta_dir = storage.join(path, "metadata")
    try:
        parts = sorted(n for n in storage.list_names(meta_dir, spark) if n.startswith("part-"))
    except FileNotFoundError:
        return None
    for name in parts:
        text = storage.read_bytes(storage.join(meta_dir, name), spark).decode("utf-8", "replace").strip()
        if not text:
            continue
        try:
            cls = json.loads(text.splitlines()[0]).get("class")
        except (json.JSONDecodeError, AttributeError):
            break
        return str(cls)
    raise ModelFormatError(f"model directory {path}: metadata/ holds no readable Spark ML metadata JSON")


def detect_format(path: str, spark=None) -> ModelFormat:
    """Which registered format the directory ``path`` (any storage URI) is: a ``marker`` file
    first, else the ``class`` in Spark's ML-persistence ``metadata/part-*`` JSON. Reads one small
    file; needs no SparkSession for a local path. A directory with neither counts as
    "softmax_spark" (``load_model`` then names the missing file). Raises ``ModelFormatError`` (one
    line) for a Spark ML directory of another class or unreadable metadata."""
    for fmt in FORMATS.values():
        if fmt.marker and storage.exists(storage.join(path, fmt.marker), spark):
            return fmt
    cls = _spark_ml_class(path, spark)
    if cls is None:
        return FORMATS["softmax_spark"]
    for fmt in FORMATS.values():
        if fmt.spark_ml_class == cls:
            return fmt
    known = ", ".join(f.spark_ml_class for f in FORMATS.values() if f.spark_ml_class)
    raise ModelFormatError(f"model directory {path} holds a saved {cls}; expected a softmax_spark model or one of {known}")


def model_dir_kind(path: str, spark=None) -> str:
    """``detect_format(path, spark).name``: "softmax_spark" (``metadata.json``, ``save_model``),
    "ml" (a saved ``softmax_spark.ml.SoftmaxRegressionModel``) or "mllib" (Spark MLlib's
    ``LogisticRegressionModel``). Raises ``ModelFormatError`` as ``detect_format``."""
    return detect_format(path, spark).name


def is_mllib_model_dir(path: str, spark=None) -> bool:
    """Is ``path`` a Spark MLlib ``LogisticRegressionModel`` directory (``detect_format``)? False
    for any other or unreadable directory."""
    try:
        return detect_format(path, spark).name == "mllib"
    except ModelFormatError:
        return False


def read_model(path: str, spark=None) -> SoftmaxModel:
    """The model in the directory ``path`` of any registered format, read as it is (an MLlib
    model's classes are its label indices 0, 1, …, C−1). Raises ``ModelFormatError``."""
    return detect_format(path, spark).read(os.fspath(path), spark=spark)


# ---------------------------------------------------------------------------------------------
# warm starts: any registered model directory, matched to the data's classes
# ---------------------------------------------------------------------------------------------
def _coerce_like(values: list, classes: list, flag: str) -> list:
    """Labels given as text (``--init-model-classes a,b,c``) in the type of the data's ``classes``."""
    kind = value_family(classes[0]) if classes else "string"
    out = []
    for value in values:
        if isinstance(value, str) and kind == "numeric":
            try:
                value = float(value)
            except ValueError:
                raise InputError(f"{flag}: {value!r} is not a number, and the data's classes are {classes}") from None
        elif isinstance(value, str) and kind == "bool":
            if value.lower() not in ("true", "false"):
                raise InputError(f"{flag}: {value!r} is not true/false, and the data's classes are {classes}")
            value = value.lower() == "true"
        out.append(value)
    return out


def load_any_model(path: str, spark=None, classes=None, mllib_classes=None, n_features=None,
                   what: str = "--init-model", class_flag: str = "--init-model-classes") -> SoftmaxModel:
    """A SoftmaxModel from any registered model directory (ours, a saved Spark ML
    ``SoftmaxRegressionModel`` or an MLlib ``LogisticRegressionModel``), at any storage URI (for
    warm starts).

    classes       : the class order the caller needs (the training data's, a list of C labels);
                    the returned model's rows are reordered to it. None keeps the model's order.
    mllib_classes : for an MLlib model, its labels in MLlib's label-index order 0, 1, …, C−1
                    (MLlib models carry no label names; text values are converted to the type of
                    ``classes``). Required for an MLlib model when ``classes`` is given.
    n_features    : the number of features the caller needs (D), checked when given.
    Returns a SoftmaxModel with coef (C, D), intercept (C,), classes = ``classes`` when given.
    Raises ``ModelFormatError`` (not a model, unknown format, pickled arrays) or ``InputError``
    (one line starting with ``what``: other classes, other feature count, no class order for an
    MLlib model). Logs ``warm start from <path> (…): classes matched …``.
    """
    fmt = detect_format(path, spark)
    model = fmt.read(path, spark=spark)
    if not fmt.records_classes:
        if mllib_classes is None:
            if classes is not None:
                raise InputError(
                    f"{what} {path} is a Spark MLlib model, which carries no label names: give its classes in "
                    f"label-index order with {class_flag} (e.g. {class_flag} "
                    f"{','.join(str(c) for c in list(classes)[:model.n_classes])})"
                )
        else:
            given = _coerce_like(list(mllib_classes), list(classes) if classes is not None else [], class_flag)
            if len(given) != model.n_classes or len({class_key(c) for c in given}) != len(given):
                raise InputError(
                    f"{class_flag} {list(mllib_classes)}: {len(given)} labels, the MLlib model {path} has "
                    f"{model.n_classes} classes (give each label once, in label-index order)"
                )
            model = SoftmaxModel(model.coef, model.intercept, given, metadata=model.metadata)
    if n_features is not None and model.n_features != n_features:
        raise InputError(f"{what} {path} has {model.n_features} features, the data has {n_features}")
    if classes is None:
        return model
    classes = list(classes)
    position = {class_key(c): k for k, c in enumerate(model.classes)}
    rows = [position.get(class_key(c)) for c in classes]
    if len(model.classes) != len(classes) or None in rows:
        raise InputError(f"{what} {path} has classes {list(model.classes)}, the data has {classes}")
    # MLlib: which label index each class came from; ours: which row of the saved model
    matched = ", ".join(f"{c!r} = {'row' if fmt.records_classes else 'label index'} {k}"
                        for c, k in zip(classes, rows))
    log.info("warm start from %s (%s): classes matched %s", path, fmt.description, matched)
    return SoftmaxModel(model.coef[rows], model.intercept[rows], classes, history=model.history,
                        metadata=model.metadata)


# ---------------------------------------------------------------------------------------------
# scoring: any registered model directory (what jobs/evaluate.py accepts)
# ---------------------------------------------------------------------------------------------
def parse_class_labels(values) -> list:
    """Labels given as text (``--model-classes a,b,c``): all numbers → floats (they match an
    integer or double label column, 1 == 1.0), else the strings as given."""
    values = [v.strip() if isinstance(v, str) else v for v in values]
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return [str(v) for v in values]


def load_scoring_model(path: str, spark=None, model_classes=None) -> SoftmaxModel:
    """The model to score with, from any registered format (``detect_format``), at any storage
    URI (``spark``: the session for a non-local one; a local path needs none).

    - a softmax_spark model directory: ``load_model``;
    - a saved ``softmax_spark.ml.SoftmaxRegressionModel``: ``spark_ml_io.read_spark_ml_model``
      (its classes are recorded); its featuresCol / labelCol become the metadata ``options``
      features_col / label_col, so ``jobs/evaluate.py`` defaults to them;
    - an MLlib ``LogisticRegressionModel``: ``mllib_io.read_mllib_model``. MLlib models carry no
      label names: the classes are its label indices 0.0, 1.0, …, K−1 as doubles (MLlib's label
      convention), or ``model_classes`` (K labels in label-index order; text numbers become floats,
      ``parse_class_labels``).
    ``model_classes`` for a model that records its classes is refused (it could only contradict
    them). Returns a SoftmaxModel (coef (C, D), intercept (C,)). Raises ``ModelFormatError`` /
    ``InputError`` with one line."""
    path = os.fspath(path)
    fmt = detect_format(path, spark)
    if model_classes and fmt.records_classes:
        raise InputError(f"--model-classes is for an MLlib model (which carries no label names); the model "
                         f"{path} records its classes")
    model = fmt.read(path, spark=spark)
    if fmt.name == "softmax_spark":
        return model
    if fmt.records_classes:
        params = model.metadata.get("ml_params") or {}
    else:
        params = (model.metadata.get("mllib") or {}).get("params") or {}
        if model_classes:
            classes = parse_class_labels(model_classes)
            if len(classes) != model.n_classes or len(set(classes)) != len(classes):
                raise InputError(f"--model-classes {','.join(str(c) for c in model_classes)}: {len(classes)} "
                                 f"labels, the MLlib model {path} has {model.n_classes} classes (give each label "
                                 "once, in label-index order)")
        else:
            classes = [float(c) for c in range(model.n_classes)]
        model = SoftmaxModel(model.coef, model.intercept, classes, history=model.history, metadata=model.metadata)
    options = {"features_col": params.get("featuresCol", "features"), "label_col": params.get("labelCol", "label")}
    metadata = {**model.metadata, "options": {**options, **(model.metadata.get("options") or {})}}
    log.info("model %s: a %s", path, fmt.description if fmt.records_classes
             else f"{fmt.description} (classes {model.classes})")
    return SoftmaxModel(model.coef, model.intercept, model.classes, history=model.history, metadata=metadata)
