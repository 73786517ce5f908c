"""A training job killed with SIGKILL mid-run (the whole process group: JVM and Python driver)
leaves no partial model, and the same command run again resumes from its last checkpoint and
ends with the model of an uninterrupted run (issue 6).

The killed and the resumed runs are real ``spark-submit`` subprocesses; the uninterrupted
reference is the same command run in-process (``main(argv, spark=spark)``, local[2]: the same
partitions, so the same sums) while they run, to save a JVM start and wall time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import make_data, write_parquet
from cluster import alive
from cluster import descendants as _children  # pid's descendants, from /proc
from test_failures import TRAIN_JOB, _load_job, _submit_env, submit_command

# iterations: long enough (≥ 15 s on a quiet 2-core machine) that the kill lands mid-run
MAX_ITER = 200


def _checkpoints(directory: Path) -> list[str]:
    """Checkpoint names under ``<directory>/<run fingerprint>/``."""
    return sorted(p.name for p in directory.glob("*/ckpt-*")) if directory.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("store", ["local", "viewfs"])
def test_sigkill_then_rerun_resumes_and_matches_uninterrupted(spark, capsys, tmp_path, store):
    """``store`` viewfs: the killed and the resumed runs write their model and checkpoints
    through a ``viewfs://default/store`` mount of ``tmp_path`` (a Hadoop FileSystem with its own
    scheme, as HDFS or S3 would be); the files are checked under the mount's target."""
    from softmax_spark import load_model

    X, y = make_data(n=200, d=4, c=3, seed=21)
    folder = tmp_path / "data"
    folder.mkdir()
    write_parquet(folder / "a.parquet", X[:100], y[:100])
    write_parquet(folder / "b.parquet", X[100:], y[100:])
    options = ["--input", str(folder), "--checkpoint-every", "1", "--optimizer", "sgd", "--batch-fraction", "0.5",
               "--momentum", "0.5", "--tol", "0", "--seed", "4", "--max-iter", str(MAX_ITER), "--no-write-mllib"]

    def argv(name, root=str(tmp_path)):
        return [*options, "--model-dir", f"{root}/{name}/model", "--checkpoint-dir", f"{root}/{name}/ckpt"]

    def command(log_name):
        if store == "local":
            return submit_command("local[2]", tmp_path / f"local-{log_name}", *argv("run"))
        command = submit_command("local[2]", tmp_path / f"local-{log_name}", *argv("run", "viewfs://default/store"))
        job = command.index(str(TRAIN_JOB))
        command[job:job] = ["--conf", f"spark.hadoop.fs.viewfs.mounttable.default.link./store={tmp_path.as_uri()}"]
        return command

    def start(log_name, **kw):
        log = open(tmp_path / f"{log_name}.log", "w")
        try:
            return subprocess.Popen(command(log_name), env=_submit_env(), stdout=log, stderr=subprocess.STDOUT, **kw)
        finally:
            log.close()

    ckpt, model = tmp_path / "run" / "ckpt", tmp_path / "run" / "model"
    victim = start("killed", start_new_session=True)
    seen: dict = {"leftovers": set()}

    def kill_at_first_checkpoint_then_rerun():
        try:
            deadline = time.monotonic() + 600
            while not _checkpoints(ckpt):
                if victim.poll() is not None or time.monotonic() > deadline:
                    return
                time.sleep(0.05)
            seen["leftovers"] = _children(victim.pid)
            seen["running"] = victim.poll() is None
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=60)
            seen["checkpoints"] = _checkpoints(ckpt)
            seen["model_parent"] = sorted(os.listdir(model.parent))
            # the JVM's Python daemon and workers (their own process group) go when the JVM does
            deadline = time.monotonic() + 30
            while any(alive(p) for p in seen["leftovers"]) and time.monotonic() < deadline:
                time.sleep(0.2)
            seen["orphans"] = [p for p in seen["leftovers"] if alive(p)]
            seen["resumed"] = start("resumed")
        except BaseException as exc:  # reported by the main thread
            seen["error"] = exc

    watcher = threading.Thread(target=kill_at_first_checkpoint_then_rerun, daemon=True)
    watcher.start()
    resumed = None
    try:
        # the uninterrupted reference, in-process, while the killed and the resumed runs go
        assert _load_job(TRAIN_JOB, "softmax_spark_train_job").main(argv("reference"), spark=spark) == 0
        capsys.readouterr()
        watcher.join(timeout=900)
        assert "error" not in seen, seen.get("error")
        assert seen.get("running"), "the run ended before it could be killed: " + (
            (tmp_path / "killed.log").read_text()[-3000:])
        assert victim.returncode == -signal.SIGKILL
        killed_at = seen["checkpoints"]
        assert killed_at and killed_at[-1] < f"ckpt-{MAX_ITER:08d}"
        # nothing of a model is visible: no model dir, no temporary sibling of it
        assert seen["model_parent"] == ["ckpt"]
        assert not seen["orphans"], "processes of the killed job are still running"
        resumed = seen["resumed"]
        assert resumed.wait(timeout=900) == 0, (tmp_path / "resumed.log").read_text()[-3000:]
    finally:
        for proc in (victim, resumed):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        watcher.join(timeout=60)
        if seen.get("resumed") is not None and seen["resumed"].poll() is None:
            seen["resumed"].kill()
            seen["resumed"].wait()
        for pid in seen["leftovers"]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    text = (tmp_path / "resumed.log").read_text()
    assert "resuming from iteration" in text
    resumed_from = int(text.split("resuming from iteration", 1)[1].split()[0])
    assert int(killed_at[0][5:]) <= resumed_from < MAX_ITER
    got, want = load_model(str(model)), load_model(str(tmp_path / "reference" / "model"))
    assert [h["iteration"] for h in got.history] == list(range(1, MAX_ITER + 1))
    np.testing.assert_allclose(got.coef, want.coef, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.intercept, want.intercept, rtol=0, atol=1e-9)
