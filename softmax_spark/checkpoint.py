"""Training checkpoints: arrays in one .npz (loaded with allow_pickle=False), the rest JSON.

``<checkpoint-dir>/ckpt-00000012/`` holds ``arrays.npz`` (θ, optimizer state arrays),
``state.json`` (iteration, scalars, the configuration fingerprint) and ``history.json``; each is
published atomically (temporary sibling + rename), the two newest are kept. A run started again
with the same checkpoint dir and configuration resumes from the newest complete one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile

import numpy as np

from .atomic import atomic_directory
from .errors import ModelFormatError

__all__ = ["Checkpoint", "save_checkpoint", "latest_checkpoint", "fingerprint"]

_NAME = re.compile(r"^ckpt-(\d{8})$")
KEEP = 2
FORMAT = "softmax_spark.checkpoint"


class Checkpoint:
    def __init__(self, path, iteration, arrays, scalars, history):
        self.path = path
        self.iteration = iteration
        self.arrays = arrays
        self.scalars = scalars
        self.history = history


def fingerprint(options: dict) -> str:
    """A short hash of what defines a training run's path (data, objective, optimizer)."""
    blob = json.dumps(options, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def save_checkpoint(directory: str, iteration: int, arrays: dict, scalars: dict, history: list,
                    run_fingerprint: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"ckpt-{iteration:08d}")
    with atomic_directory(path, overwrite=True, what="checkpoint") as tmp:
        np.savez(os.path.join(tmp, "arrays.npz"), **{k: np.asarray(v) for k, v in arrays.items()})
        state = {"format": FORMAT, "iteration": iteration, "fingerprint": run_fingerprint, "scalars": scalars}
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(state, f, default=float)
        with open(os.path.join(tmp, "history.json"), "w") as f:
            json.dump(history, f, default=float)
    for old in sorted(_checkpoints(directory))[:-KEEP]:
        shutil.rmtree(os.path.join(directory, old), ignore_errors=True)
    return path


def _checkpoints(directory: str) -> list[str]:
    if not os.path.isdir(directory):
        return []
    return [name for name in os.listdir(directory) if _NAME.match(name)]


def latest_checkpoint(directory: str, run_fingerprint: str) -> Checkpoint | None:
    """The newest complete checkpoint, or None. One written by a different configuration is an
    error (resuming it would silently train something else)."""
    for name in sorted(_checkpoints(directory), reverse=True):
        path = os.path.join(directory, name)
        try:
            with open(os.path.join(path, "state.json")) as f:
                state = json.load(f)
            with open(os.path.join(path, "history.json")) as f:
                history = json.load(f)
            with np.load(os.path.join(path, "arrays.npz"), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # incomplete or tampered: skip
            print(f"softmax_spark: skipping unreadable checkpoint {path}: {exc}")
            continue
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            continue
        if state.get("fingerprint") != run_fingerprint:
            raise ModelFormatError(
                f"checkpoint {path} was written by a different training configuration; "
                "use another --checkpoint-dir or remove it"
            )
        return Checkpoint(path, int(state["iteration"]), arrays, state.get("scalars", {}), history)
    return None
