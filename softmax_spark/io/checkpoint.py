"""Training checkpoints, one folder per run, on any ``softmax_spark.io.storage`` URI.

Layout::

    <checkpoint-dir>/<run fingerprint>/ckpt-00000012/   arrays.npz   θ and optimizer state arrays
                                                        state.json   iteration, scalars, fingerprint, saved_at
                                                        history.json per-iteration records

The run fingerprint (16 hex digits, ``fingerprint``) hashes what defines the run's path: the
data summary and the options (``training``). Each checkpoint is published atomically; arrays are
read back with ``np.load(allow_pickle=False)``, the rest is JSON.

Rules (a daily job with a fixed ``--checkpoint-dir`` lives with them):

- **Resume**: ``latest_checkpoint(dir, fp)`` returns the newest complete checkpoint of run ``fp``
  only; checkpoints of other runs (other data or options: yesterday's) are neither resumed nor an
  error. It logs which run it resumes, or that none matched.
- **Keep**: the ``KEEP`` = 2 newest checkpoints of a run (an unreadable newest one is skipped).
- **Finish**: ``finish_run(dir, fp, converged=True)`` — the run stopped by its own criterion
  (tol, gtol, early stopping, no progress) — removes the run's folder, so the same command run
  again (e.g. with ``--overwrite``) trains from the start instead of resuming a finished run. A
  run stopped by ``--max-iter`` (``converged=False``) keeps its checkpoints: the same command
  with a larger ``--max-iter`` continues it.
- **Clean**: when a run writes its first checkpoint, the folders of other runs whose newest
  checkpoint was saved more than ``STALE_DAYS`` = 7 days ago are removed (runs killed and never
  resumed), as are leftover temporaries of interrupted saves in the run's own folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import time
import zipfile

import numpy as np

from softmax_spark.io import storage

__all__ = ["Checkpoint", "save_checkpoint", "latest_checkpoint", "finish_run", "fingerprint", "run_directory"]

log = logging.getLogger("softmax_spark")

_NAME = re.compile(r"^ckpt-(\d{8})$")
_RUN = re.compile(r"^[0-9A-Za-z_-]+$")  # fingerprints; hidden temporaries never match
KEEP = 2
STALE_DAYS = 7.0
FORMAT = "softmax_spark.checkpoint"


class Checkpoint:
    """A restored checkpoint: ``path`` (URI), ``iteration``, ``arrays`` (name → ndarray),
    ``scalars`` (name → number) and ``history`` (list of records)."""

    def __init__(self, path, iteration, arrays, scalars, history):
        self.path = path
        self.iteration = iteration
        self.arrays = arrays
        self.scalars = scalars
        self.history = history


def fingerprint(options: dict) -> str:
    """A short hash (16 hex digits) of what defines a training run's path (data, objective, optimizer)."""
    blob = json.dumps(options, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def run_directory(directory: str, run_fingerprint: str) -> str:
    """``<directory>/<run_fingerprint>``: where one run's checkpoints live."""
    return storage.join(directory, run_fingerprint)


def save_checkpoint(directory: str, iteration: int, arrays: dict, scalars: dict, history: list,
                    run_fingerprint: str) -> str:
    """Publish ``<directory>/<run_fingerprint>/ckpt-<iteration:08d>`` atomically; keep the
    ``KEEP`` newest of the run (module docstring for the cleaning rule). Returns its URI.

    arrays: name → ndarray (saved with np.savez); scalars: name → number; history: JSON records.
    Raises ``InputError`` when ``directory``'s filesystem cannot be reached."""
    run_dir = run_directory(directory, run_fingerprint)
    first = not storage.exists(run_dir)
    if first:
        _remove_stale_runs(directory, run_fingerprint)
    path = storage.join(run_dir, f"ckpt-{iteration:08d}")
    with storage.atomic_directory(path, overwrite=True, what="checkpoint") as tmp:
        np.savez(os.path.join(tmp, "arrays.npz"), **{k: np.asarray(v) for k, v in arrays.items()})
        state = {"format": FORMAT, "iteration": iteration, "fingerprint": run_fingerprint, "scalars": scalars,
                 "saved_at": time.time()}
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(state, f, default=float)
        with open(os.path.join(tmp, "history.json"), "w") as f:
            json.dump(history, f, default=float)
    names = storage.list_names(run_dir)
    for old in sorted(n for n in names if _NAME.match(n))[:-KEEP]:
        storage.delete(storage.join(run_dir, old))
    for leftover in (n for n in names if n.startswith(".ckpt-")):  # of a save killed mid-way
        storage.delete(storage.join(run_dir, leftover))
    return path


def _names(directory: str, pattern) -> list[str]:
    try:
        return [name for name in storage.list_names(directory) if pattern.match(name)]
    except FileNotFoundError:
        return []


def _read(path: str):
    """(state, history, arrays) of the checkpoint at ``path``; raises on anything unreadable."""
    with storage.local_copy(path) as local:
        with open(os.path.join(local, "state.json")) as f:
            state = json.load(f)
        with open(os.path.join(local, "history.json")) as f:
            history = json.load(f)
        npz = os.path.join(local, "arrays.npz")
        for name in ("state.json", "history.json", "arrays.npz"):  # a FIFO would block the reader
            if not stat.S_ISREG(os.stat(os.path.join(local, name)).st_mode):
                raise ValueError(f"{name} is not a regular file")
        with zipfile.ZipFile(npz) as archive:  # np.savez stores, never compresses: no expansion
            declared = sum(info.file_size for info in archive.infolist())
        if declared > max(64 << 20, 2 * os.path.getsize(npz)):
            raise ValueError(f"arrays.npz declares {declared} bytes, far more than its size")
        with np.load(npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    return state, history, arrays


def _damage(state: dict, arrays: dict, n_params: int | None) -> str | None:
    """Why a readable checkpoint cannot be resumed (None when it can): a non-integer iteration,
    a non-numeric or NaN array, a non-finite θ, or θ (and the loop's best θ) not of shape
    (``n_params``,) when ``n_params`` is given."""
    if not isinstance(state.get("iteration"), int) or state["iteration"] < 0:
        return f"iteration {state.get('iteration')!r} is not a count"
    if not isinstance(state.get("scalars", {}), dict):
        return "its scalars are not a map"
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            return f"array {name!r} holds {array.dtype}, expected numbers"
        if array.dtype.kind == "f" and np.isnan(array).any():
            return f"array {name!r} holds NaN"
    for name in ("theta", "loop_best_theta"):
        if name not in arrays:
            continue
        if n_params is not None and arrays[name].shape != (n_params,):
            return f"{name} has shape {arrays[name].shape}, this run has {n_params} parameters"
        if not np.isfinite(arrays[name]).all():
            return f"{name} holds infinite values"
    return None


def latest_checkpoint(directory: str, run_fingerprint: str, n_params: int | None = None) -> Checkpoint | None:
    """The newest complete checkpoint of run ``run_fingerprint`` under ``directory``, or None.

    Checkpoints of other runs are ignored (logged); an unreadable, tampered or damaged checkpoint
    (``_damage``: NaN, wrong shape of θ given ``n_params``, the run's parameter count P) is
    skipped (printed) and the one before it used. Raises ``InputError`` when ``directory``'s
    filesystem cannot be reached."""
    run_dir = run_directory(directory, run_fingerprint)
    for name in sorted(_names(run_dir, _NAME), reverse=True):
        path = storage.join(run_dir, name)
        try:
            state, history, arrays = _read(path)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # incomplete or tampered: skip
            print(f"softmax_spark: skipping unreadable checkpoint {path}: {exc}", flush=True)
            continue
        if (not isinstance(state, dict) or state.get("format") != FORMAT
                or state.get("fingerprint") != run_fingerprint or not isinstance(history, list)):
            print(f"softmax_spark: skipping checkpoint {path}: not a checkpoint of run {run_fingerprint}", flush=True)
            continue
        damage = _damage(state, arrays, n_params)
        if damage is not None:
            print(f"softmax_spark: skipping damaged checkpoint {path}: {damage}", flush=True)
            continue
        log.info("checkpoint dir %s: resuming run %s from %s", directory, run_fingerprint, path)
        return Checkpoint(path, int(state["iteration"]), arrays, state.get("scalars", {}), history)
    others = [name for name in _names(directory, _RUN) if name != run_fingerprint]
    log.info("checkpoint dir %s: no checkpoint of run %s%s; training from the start", directory, run_fingerprint,
             f" (other runs there: {', '.join(sorted(others))})" if others else "")
    return None


def finish_run(directory: str, run_fingerprint: str, converged: bool) -> None:
    """A run ended. ``converged`` (stopped by its own criterion, not by max_iter): remove its
    checkpoints, so running it again trains from the start. Otherwise keep them (a larger
    max_iter continues the run)."""
    if converged and storage.delete(run_directory(directory, run_fingerprint)):
        log.info("checkpoint dir %s: run %s finished; its checkpoints are removed", directory, run_fingerprint)


def _remove_stale_runs(directory: str, run_fingerprint: str) -> None:
    """Remove other runs' folders whose newest checkpoint is older than ``STALE_DAYS``."""
    cutoff = time.time() - STALE_DAYS * 86400.0
    for run in _names(directory, _RUN):
        if run == run_fingerprint:
            continue
        run_dir = storage.join(directory, run)
        newest = sorted(_names(run_dir, _NAME))
        try:
            state = json.loads(storage.read_bytes(storage.join(run_dir, newest[-1], "state.json")))
            saved_at = float(state["saved_at"])
        except Exception:  # noqa: BLE001 - not a run folder we can date: left alone
            continue
        if saved_at < cutoff:
            storage.delete(run_dir)
            log.info("checkpoint dir %s: removed run %s (last checkpoint %.0f days ago)", directory, run,
                     (time.time() - saved_at) / 86400.0)
