"""Issue 16 item 17: two trainings at once on one machine (same ``spark.local.dir``, different
model dirs) do not collide in the executor-local block files, and leave none behind — also when
a run is killed with SIGKILL (its ``softmax_spark-*`` directory stays inside the ``blockmgr-*``
directory its JVM could not delete; the next run on the machine removes it, its owner being gone).

Real ``spark-submit`` subprocesses (local[2]); the reference models are the same commands run
in-process on the session fixture while the subprocesses run (same partitions, same sums).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from cluster import alive, descendants
from helpers import make_data, write_parquet
from test_failures import TRAIN_JOB, _load_job, _submit_env, submit_command


def _run_dirs(local_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(local_dir)) for p in local_dir.rglob("softmax_spark-*"))


def test_remove_stale_run_dirs_keeps_live_and_unknown_owners(tmp_path):
    """The rule, without Spark: a run dir is removed only when its owner record names a JVM of this
    host that is not running (or a reused pid: another start time)."""
    import json
    import socket

    from softmax_spark.spark.ingest import OWNER_SUFFIX, _proc_stat, remove_stale_run_dirs

    local = tmp_path / "blockmgr-a"
    sibling = tmp_path / "blockmgr-b"
    me = {"pid": os.getpid(), "start": _proc_stat(os.getpid())[2]}
    dead = subprocess.Popen(["true"])
    dead.wait()
    owners = {
        local / "softmax_spark-live": {"host": socket.gethostname(), "jvm": me},
        local / "softmax_spark-dead": {"host": socket.gethostname(), "jvm": {"pid": dead.pid, "start": 1}},
        sibling / "softmax_spark-reused": {"host": socket.gethostname(), "jvm": {**me, "start": me["start"] + 1}},
        sibling / "softmax_spark-elsewhere": {"host": "another-host", "jvm": {"pid": dead.pid, "start": 1}},
        sibling / "softmax_spark-unknown": {"host": socket.gethostname(), "jvm": None},
    }
    for run_dir, owner in owners.items():
        run_dir.mkdir(parents=True)
        (run_dir / "part-00000.X").write_bytes(b"x")
        Path(str(run_dir) + OWNER_SUFFIX).write_text(json.dumps(owner))
    (local / "softmax_spark-no-owner").mkdir()
    removed = remove_stale_run_dirs(str(local))
    assert sorted(Path(p).name for p in removed) == ["softmax_spark-dead", "softmax_spark-reused"]
    kept = ["blockmgr-a/softmax_spark-live", "blockmgr-b/softmax_spark-elsewhere", "blockmgr-b/softmax_spark-unknown"]
    assert _run_dirs(tmp_path) == sorted(kept + [k + OWNER_SUFFIX for k in kept] + ["blockmgr-a/softmax_spark-no-owner"])


@pytest.mark.slow
def test_two_trainings_at_once_and_a_killed_one_leave_no_block_files(spark, capsys, tmp_path):
    from softmax_spark import load_model

    local_dir = tmp_path / "spark-local"
    local_dir.mkdir()
    datasets = {}
    for name, seed in (("a", 1), ("b", 2)):
        X, y = make_data(n=200, d=4, c=3, seed=seed)
        folder = tmp_path / f"data-{name}"
        folder.mkdir()
        write_parquet(folder / "0.parquet", X[:100], y[:100])  # two files: two partitions
        write_parquet(folder / "1.parquet", X[100:], y[100:])
        datasets[name] = folder

    def argv(name, data, root=tmp_path):
        return ["--input", str(data), "--model-dir", str(root / name / "model"), "--no-write-mllib",
                "--optimizer", "lbfgs", "--max-iter", "30"]

    def start(name, args, **kw):
        log = open(tmp_path / f"{name}.log", "w")
        try:
            return subprocess.Popen(submit_command("local[2]", local_dir, *args), env=_submit_env(), stdout=log,
                                    stderr=subprocess.STDOUT, **kw)
        finally:
            log.close()

    procs, leftovers = [], set()
    try:
        # 1. a run killed (whole process group, SIGKILL) once its block files exist
        victim = start("killed", ["--input", str(datasets["a"]), "--model-dir", str(tmp_path / "killed" / "model"),
                                  "--no-write-mllib", "--optimizer", "sgd", "--tol", "0", "--max-iter", "100000"],
                       start_new_session=True)
        procs.append(victim)
        deadline = time.monotonic() + 600
        while "objective " not in (tmp_path / "killed.log").read_text() or not _run_dirs(local_dir):
            assert victim.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the victim never reached its first iteration"
            time.sleep(0.1)
        leftovers = descendants(victim.pid)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(alive(p) for p in leftovers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in leftovers if alive(p)], "processes of the killed job are still running"
        # Spark's shutdown hook did not run: the killed run's block files are still there
        stale = _run_dirs(local_dir)
        assert stale and all(s.startswith("blockmgr-") for s in stale), stale

        # 2. two trainings at once, same spark.local.dir, different data and model dirs
        runs = {name: start(name, argv(name, datasets[name])) for name in ("a", "b")}
        procs.extend(runs.values())
        train = _load_job(TRAIN_JOB, "softmax_spark_train_job").main
        for name in ("a", "b"):  # the references, in-process, meanwhile
            assert train(argv(name, datasets[name], tmp_path / "reference"), spark=spark) == 0
        capsys.readouterr()
        for name, proc in runs.items():
            assert proc.wait(timeout=900) == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for pid in leftovers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    for name in ("a", "b"):
        got, want = load_model(str(tmp_path / name / "model")), load_model(str(tmp_path / "reference" / name / "model"))
        np.testing.assert_allclose(got.coef, want.coef, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.intercept, want.intercept, rtol=0, atol=1e-9)
    # nothing of ours under spark.local.dir: the two runs' own blocks and the killed run's
    assert _run_dirs(local_dir) == [], sorted(str(p) for p in local_dir.rglob("*"))
