"""Run directories of the executor-local block files: where they go, who owns them, when they go.

Each ingest run writes its partitions' blocks under ``<Spark local dir>/softmax_spark-<run id>/``
(``_local_dir``: the executor's first ``SPARK_LOCAL_DIRS`` entry, as Spark's own block manager
uses). The directory is created 0700 and its files 0600 (block files hold the training data);
the first task of a run on an executor records the owning process — the executor's JVM, found
through /proc — so that ``remove_stale_run_dirs`` can delete the directories of runs whose
executor died without cleaning up, and never those of a live one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
import uuid

__all__ = ["OWNER_SUFFIX", "remove_stale_run_dirs"]


def _private_file(path: str):
    """A new (truncated) binary file only its owner can read or write (0600 whatever the umask:
    block files hold the training data, and Spark's own local directories are 0700)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file (a retried attempt's name) keeps its old mode otherwise
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def _private_run_dir(root: str) -> bool:
    """Create the run directory ``root`` with mode 0700 (whatever the umask); False when it
    already existed (then made 0700 as well, if it is ours)."""
    try:
        os.mkdir(root, 0o700)
        created = True
    except FileNotFoundError:  # the local dir itself is missing (a temp dir cleaned meanwhile)
        os.makedirs(os.path.dirname(root), exist_ok=True)
        return _private_run_dir(root)
    except FileExistsError:
        created = False
    try:
        os.chmod(root, 0o700)
    except PermissionError:  # not ours: reading it would fail later with a clear error
        pass
    return created


def _local_dir() -> str:
    """The executor's Spark local directory (set for Python workers), else the temp dir."""
    dirs = os.environ.get("SPARK_LOCAL_DIRS", "")
    return dirs.split(",")[0] if dirs else tempfile.gettempdir()


# -- executor-local run directories: who owns them, and removing those of dead executors -------
# Each run writes into ``<executor local dir>/softmax_spark-<run_id>`` (run_id: 48 random bits, so
# concurrent runs never share a directory). A run that ends releases its blocks, and Spark deletes
# its executor's local dir (``blockmgr-*``) at a normal shutdown; a JVM killed with SIGKILL (or by
# the OOM killer) runs no shutdown hook, and both stay. So each run directory has an owner record
# beside it, ``softmax_spark-<run_id>.owner.json`` — the executor JVM's pid and start time — and the
# first task of every later run on the machine removes the run directories whose owner is gone.
OWNER_SUFFIX = ".owner.json"


def _proc_stat(pid: int):
    """(command name, parent pid, start time in clock ticks since boot) from Linux's /proc; None
    when the process does not exist (or there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    rest = text.rsplit(")", 1)[1].split()  # rest[0] is field 3 (state): field k is rest[k - 3]
    if rest[0] == "Z":
        return None  # a zombie is dead
    return text[text.index("(") + 1:text.rindex(")")], int(rest[1]), int(rest[19])


def _executor_jvm():
    """{"pid", "start"} of the JVM running this Python worker — its nearest ``java`` ancestor
    (worker → pyspark daemon → JVM) — or None when it cannot be told (no /proc: not Linux)."""
    pid = os.getppid()
    for _ in range(4):
        stat = _proc_stat(pid)
        if stat is None:
            return None
        name, parent, start = stat
        if name == "java":
            return {"pid": pid, "start": start}
        pid = parent
    return None


def _claim_run_dir(root: str) -> None:
    """Record this executor's JVM as the owner of ``root``, then remove the run directories of
    JVMs that died without cleaning up. Best effort: never fails the ingest."""
    try:
        owner = {"host": socket.gethostname(), "jvm": _executor_jvm(), "created": time.time()}
        tmp = f"{root}{OWNER_SUFFIX}.tmp-{uuid.uuid4().hex[:8]}"
        with _private_file(tmp) as f:
            f.write(json.dumps(owner).encode("utf-8"))
        os.replace(tmp, root + OWNER_SUFFIX)
        remove_stale_run_dirs(os.path.dirname(root))
    except Exception:
        pass


def remove_stale_run_dirs(local_dir: str) -> list[str]:
    """Delete the ``softmax_spark-*`` run directories under ``local_dir`` and — when it is one of
    Spark's ``blockmgr-*`` directories — under its siblings (other executors' / applications'
    local dirs on this machine: local mode puts every application's under the same
    ``spark.local.dir``) whose owner JVM (``<run dir>.owner.json``: host, pid, start time) is no
    longer running on this host, with their owner records. Directories without an owner record,
    or of another host, or whose owner cannot be checked, are kept. Returns the removed paths."""
    import glob

    pattern = "softmax_spark-*" + OWNER_SUFFIX
    patterns = [os.path.join(local_dir, pattern)]
    if os.path.basename(local_dir.rstrip(os.sep)).startswith("blockmgr-"):
        patterns.append(os.path.join(os.path.dirname(local_dir.rstrip(os.sep)), "blockmgr-*", pattern))
    host, removed = socket.gethostname(), []
    for record in sorted({path for pattern in patterns for path in glob.glob(pattern)}):
        run_dir = record[:-len(OWNER_SUFFIX)]
        try:
            with open(record) as f:
                owner = json.load(f)
            jvm = owner.get("jvm")
            if owner.get("host") != host or not jvm:
                continue
            stat = _proc_stat(int(jvm["pid"]))
            if stat is not None and stat[2] == int(jvm["start"]):
                continue  # alive (the same process, not a reused pid)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        _remove_run_dir(run_dir)
        removed.append(run_dir)
    return removed


def _remove_run_dir(run_dir: str) -> None:
    """Delete a run directory and its owner record (best effort)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    try:
        os.remove(run_dir + OWNER_SUFFIX)
    except OSError:
        pass
