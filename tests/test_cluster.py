"""The jobs on a real Spark standalone cluster: a master and two one-core workers on 127.0.0.1,
each worker with its own SPARK_WORKER_DIR and SPARK_LOCAL_DIRS — and, where the user may mount
(root), its own view of the disk: the other worker's local directory is an empty tmpfs in its
mount namespace, so an executor cannot read another's block files, as on separate machines
(``tests/cluster.py``). The executors run a Python *without* softmax_spark
(``<repo>/.venv-executor``: numpy, pyarrow, threadpoolctl — no scipy, pandas or pyyaml either),
so every task runs the package the job shipped itself with ``addPyFile``.

* training on the cluster with ``spark.locality.wait=0`` (a task may run on the executor that
  holds neither its descriptor nor its block file) gives the model of a ``local[2]`` run of the
  same command (1e-6);
* evaluating on the cluster scores every input row, with the model's probabilities;
* (local mode, fast) a deleted block file is written again by the pass that misses it (direct
  ingest) or makes the driver rebuild (rows from Spark), with the same sums;
* ``blocks-check``: with one executor kept busy, a pass runs every task on the other one — the
  tasks whose block files are on the busy executor write copies from the Parquet slices (direct
  ingest) or report them missing so the driver rebuilds (rows from Spark); the sums equal the
  numpy reference either way, and ``release()`` leaves no block file;
* executor loss (SIGKILL of one executor JVM; the master starts a new one): at iteration 5 of an
  lbfgs run, during the ingest pass, and while evaluation scores and writes — training ends with
  exit 0 and the local model, the evaluation output is complete, atomic, each row once.

Every process the cluster started (master, workers, executors, Python daemons) is killed in the
fixture's teardown, also on failure. The executor venv is built on the first run only (about a
minute, from PyPI; the module is skipped if that fails).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from cluster import (REPO, ExecutorVenvError, StandaloneCluster, alive, can_separate_disks, descendants,
                     executor_of, executor_pids, executor_python, spark_submit)
from helpers import make_data, write_parquet

TRAIN = REPO / "jobs" / "train.py"
EVALUATE = REPO / "jobs" / "evaluate.py"
HELPER = Path(__file__).with_name("cluster.py")
TRAIN_ARGS = ["--l2", "1e-3", "--tol", "1e-12", "--num-partitions", "4", "--optimizer", "lbfgs"]  # many passes: a kill lands mid-run
N_ROWS, N_FEATURES, N_CLASSES = 2000, 5, 3
CLUSTER_CONF = {
    "spark.executor.cores": "1",
    "spark.cores.max": "2",
    "spark.executor.memory": "512m",
    # both executors registered before the first job: the ingest tasks go to both of them
    "spark.scheduler.minRegisteredResourcesRatio": "1.0",
    "spark.scheduler.maxRegisteredResourcesWaitingTime": "180s",
}


class Setup:
    """What the module's tests share: the data, the cluster, the executor Python, the local model."""

    def __init__(self, root: Path, X, y, data: Path, cluster: StandaloneCluster, python: str, local_model_dir: Path):
        self.root, self.X, self.y, self.data = root, X, y, data
        self.cluster, self.python, self.local_model_dir = cluster, python, local_model_dir

    def submit(self, script, args, name: str, conf: dict | None = None, timeout: float = 600.0):
        """spark-submit on the cluster; fails the test with the driver's and executors' logs."""
        done = spark_submit(script, args, self.cluster.url, {**CLUSTER_CONF, **self.cluster.spark_conf, **(conf or {})},
                            log=self.root / f"{name}.log", timeout=timeout, executor_python_path=self.python)
        assert done.returncode == 0, (
            f"{name} failed ({done.returncode}):\n{done.stdout[-6000:]}\n{self.cluster.executor_logs()[-6000:]}"
        )
        return done


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java on this machine")
    try:
        python = executor_python()
    except ExecutorVenvError as exc:
        pytest.skip(f"cannot build the executor venv: {exc}")
    root = tmp_path_factory.mktemp("cluster")
    X, y = make_data(n=N_ROWS, d=N_FEATURES, c=N_CLASSES, seed=7)
    data = root / "train.parquet"
    write_parquet(data, X, y, row_group_size=500)
    assert pq.ParquetFile(data).metadata.num_row_groups == 4
    local_model_dir = root / "local-model"
    cluster = StandaloneCluster(root / "standalone", workers=2, cores=1, memory="1g",
                                separate_disks=can_separate_disks())
    started: set[int] = set()
    # the local-mode reference trains while the cluster's JVMs start
    with ThreadPoolExecutor(1) as pool:
        local = pool.submit(spark_submit, TRAIN, ["--input", data, "--model-dir", local_model_dir, *TRAIN_ARGS],
                            "local[2]", {"spark.default.parallelism": "2"}, log=root / "local-train.log")
        try:
            cluster.start()
            done = local.result()
            assert done.returncode == 0, done.stdout[-6000:]
            yield Setup(root, X, y, data, cluster, python, local_model_dir)
        finally:
            for proc in cluster.procs:
                started |= {proc.pid} | descendants(proc.pid)
            cluster.stop()
    left = sorted(pid for pid in started if alive(pid))
    assert not left, f"processes of the cluster still alive after stop(): {left}"


@pytest.fixture(scope="module")
def cluster_model(setup):
    """Trained on the cluster with spark.locality.wait=0: the scheduler may put a pass's task on
    the executor that does not hold the partition's descriptor (it then fetches it remotely)."""
    model_dir = setup.root / "cluster-model"
    done = setup.submit(TRAIN, ["--input", setup.data, "--model-dir", model_dir, *TRAIN_ARGS], "cluster-train",
                        conf={"spark.locality.wait": "0"})
    return model_dir, done.stdout


@pytest.mark.slow
def test_cluster_training_matches_local_mode(setup, cluster_model):
    from softmax_spark import load_model

    model_dir, log = cluster_model
    assert "4 partitions from parquet files (pyarrow)" in log
    local, remote = load_model(setup.local_model_dir), load_model(model_dir)
    assert remote.classes == local.classes == list(range(N_CLASSES))
    np.testing.assert_allclose(remote.coef, local.coef, rtol=0, atol=1e-6)
    np.testing.assert_allclose(remote.intercept, local.intercept, rtol=0, atol=1e-6)
    assert json.loads((model_dir / "metadata.json").read_text())["data_summary"]["rows"] == N_ROWS
    # a task that ran away from its block file wrote a copy where it ran: no driver rebuild
    assert "rebuilding" not in log, log[-4000:]
    # (for the record) how many pass tasks ran on the executor without their descriptor
    remote_reads = re.findall(r"Found block rdd_\d+_\d+ remotely", setup.cluster.executor_logs(chars=10**7))
    print(f"separate disks: {setup.cluster.separate_disks}; descriptors read remotely: {len(remote_reads)}")


@pytest.mark.slow
def test_cluster_evaluation_scores_every_row(setup, cluster_model):
    if not EVALUATE.exists():
        pytest.skip("jobs/evaluate.py does not exist yet")
    from softmax_spark import load_model

    model_dir, _ = cluster_model
    output = setup.root / "scored"
    setup.submit(EVALUATE, ["--model-dir", model_dir, "--input", setup.data, "--output", output, "--no-plots"],
                 "cluster-evaluate")
    table = pq.read_table(output)
    ids = table.column("id").to_numpy()
    assert table.num_rows == N_ROWS and sorted(ids.tolist()) == list(range(N_ROWS))
    proba = np.array(table.column("probability").to_pylist(), dtype=np.float64)
    assert proba.shape == (N_ROWS, N_CLASSES)
    expected = load_model(model_dir).predict_proba(setup.X[ids])
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def _partitions(paths) -> set[str]:
    return {Path(p).name.split(".")[0] for p in paths}


@pytest.mark.slow
def test_tasks_away_from_their_block_files_return_the_right_sums(setup):
    """``tests/cluster.py blocks-check`` (the driver) on the cluster: see its docstring."""
    from softmax_spark.core.loss import LossAccumulator

    out = setup.root / "blocks-check.json"
    local_dirs = [str(d) for d in setup.cluster.local_dirs]
    separate = setup.cluster.separate_disks
    done = setup.submit(HELPER, ["blocks-check", "--input", setup.data, "--local-dirs", ",".join(local_dirs),
                                 "--out", out], "blocks-check",
                        # reducers without a preferred executor: the rows ingest lands on both
                        conf={"spark.locality.wait": "1s", "spark.shuffle.reduceLocality.enabled": "false"})
    report = json.loads(out.read_text())
    context = done.stdout[-3000:]

    # the executors run the venv without softmax_spark and import the package the job shipped;
    # with separate disks each sees only its own local directory
    owner = {}
    for task in report["tasks"]:
        assert task["python"] == setup.python
        assert ".zip" in task["softmax_spark"] and not task["softmax_spark"].startswith(str(REPO)), task
        own = next(d for d in local_dirs if task["local_dir"].startswith(d))
        owner[task["local_dir"]] = own
        if separate:
            assert all(task["sees"][d] == [] for d in local_dirs if d != own), task
    assert sorted(set(owner.values())) == sorted(local_dirs)

    assert report["source"] == {"direct": "parquet files (pyarrow)", "rows": "spark rows (arrow)"}
    # each executor wrote blocks of both ingests into its own local directory
    for name, files in report["after_ingest"].items():
        assert all(_partitions(files[d]) for d in local_dirs), (name, files)
        assert sum(len(_partitions(f)) for f in files.values()) == 4, (name, files)

    # one executor busy: every task of the next passes ran on the other one
    busy = next(d for d in local_dirs if report["busy_local_dir"].startswith(d))
    free = next(d for d in local_dirs if d != busy)
    if separate:
        # direct ingest: the tasks wrote copies of the busy executor's partitions where they ran
        assert report["rebuilds"]["direct"] == 0, context
        moved = _partitions(report["after_ingest"]["direct"][busy])
        assert moved <= _partitions(report["while_busy"]["direct"][free]), report["while_busy"]
        # rows from Spark: the tasks reported them missing and the driver rebuilt the blocks, once
        assert report["rebuilds"]["rows"] == 1, context
    else:  # one disk: a task reads the other executor's file — nothing missing
        assert report["rebuilds"] == {"direct": 0, "rows": 0}, context

    # every pass — before, and with tasks away from their files — gives the numpy sums
    coef, intercept = np.array(report["coef"]), np.array(report["intercept"])
    ref_loss, ref_grad_coef, ref_grad_intercept = (
        LossAccumulator(N_CLASSES, N_FEATURES).add(coef, intercept, setup.X, setup.y).result())
    for name, results in report["passes"].items():
        assert len(results) == 2
        for result in results:
            assert result["n_rows"] == N_ROWS and result["weight_sum"] == N_ROWS, name
            assert result["loss"] == pytest.approx(ref_loss, rel=1e-12, abs=0), name
            np.testing.assert_allclose(result["grad_coef"], ref_grad_coef, rtol=1e-11, atol=1e-14)
            np.testing.assert_allclose(result["grad_intercept"], ref_grad_intercept, rtol=1e-11, atol=1e-14)

    # release() deletes every block file of the ingests in use, copies included
    for name, files in report["after_release"].items():
        assert not any(files.values()), (name, files)


def _sums(result):
    return np.concatenate([[result.loss, result.weight_sum, result.n_rows], result.grad_coef.ravel(),
                           result.grad_intercept])


@pytest.mark.parametrize("direct", [True, False], ids=["parquet-slices", "spark-rows"])
def test_a_deleted_block_file_never_gives_partial_sums(spark, tmp_path, direct):
    """Local mode: delete one partition's block file between two passes. Direct ingest: the pass
    writes it again from the partition's Parquet slices (no driver rebuild); rows from Spark:
    the pass reports it and the driver rebuilds. Same sums as before either way."""
    from softmax_spark.spark.distributed import DistributedLoss
    from softmax_spark.core.features import FeatureSpec
    from softmax_spark.spark.ingest import ingest, read_parquet

    X, y = make_data(n=300, d=4, c=3, seed=5)
    df = read_parquet(spark, str(write_parquet(tmp_path / "d.parquet", X, y, row_group_size=100)))
    if not direct:
        df = df.repartition(3)

    def build():
        return ingest(df, FeatureSpec(), "label", [0, 1, 2], n_partitions=3,
                      files=df.inputFiles() if direct else None)

    state = {"data": build(), "rebuilds": 0}

    def rebuild():
        state["rebuilds"] += 1
        state["data"].release()
        state["data"] = build()
        return state["data"].blocks

    assert state["data"].source == ("parquet files (pyarrow)" if direct else "spark rows (arrow)")
    victim = sorted(state["data"].blocks.collect(), key=lambda d: d.partition)[1]
    rng = np.random.default_rng(0)
    coef, intercept = rng.normal(size=(3, 4)), rng.normal(size=3)
    loss = DistributedLoss(state["data"].blocks, 3, 4, rebuild=rebuild)
    try:
        before = loss(coef, intercept)
        os.remove(victim.path + ".X")  # local mode: the driver sees the executor's disk
        after = loss(coef, intercept)
        assert state["rebuilds"] == (0 if direct else 1)
        if direct:
            assert os.path.exists(victim.path + ".X")
        np.testing.assert_allclose(_sums(after), _sums(before), rtol=1e-12, atol=1e-15)
        assert after.n_rows == 300
    finally:
        descriptors = state["data"].blocks.collect()
        state["data"].release()
    assert not any(os.path.exists(d.path + ".X") or os.path.exists(d.path + ".y.npy") for d in descriptors)


# -- executor loss (issue 16 item 16) ------------------------------------------------------------
def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), f"executor {pid} survived SIGKILL"


def _submit_in_background(setup, script, args, name, conf=None):
    """``setup.submit`` in a thread; returns (future, log path)."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(setup.submit, script, args, name, conf)
    pool.shutdown(wait=False)
    return future, setup.root / f"{name}.log"


def _wait_for(condition, future, what: str, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if future.done():
            future.result()  # the run's own failure first, with its logs
            raise AssertionError(f"the run ended before {what}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _assert_local_model(setup, model_dir):
    from softmax_spark import load_model

    local, remote = load_model(setup.local_model_dir), load_model(model_dir)
    assert remote.classes == local.classes
    np.testing.assert_allclose(remote.coef, local.coef, rtol=0, atol=1e-6)
    np.testing.assert_allclose(remote.intercept, local.intercept, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_executor_killed_at_iteration_5_gives_the_local_model(setup):
    """jobs/train.py on the cluster; when ``iter 5`` is printed one executor JVM is SIGKILLed:
    the run ends with exit 0 and the model of the local run of the same command."""
    model_dir = setup.root / "killed-at-5"
    future, log = _submit_in_background(setup, TRAIN, ["--input", setup.data, "--model-dir", model_dir, *TRAIN_ARGS],
                                        "train-killed-at-5")
    seen = lambda: log.exists() and re.search(r"iter +5 ", log.read_text(errors="replace"))  # noqa: E731
    _wait_for(seen, future, "iteration 5")
    victims = executor_pids(setup.cluster)
    assert victims, "no executor JVM found"
    _kill(victims[0])
    text_at_kill = log.read_text(errors="replace")
    done = future.result(timeout=600)
    assert "stopped:" not in text_at_kill, "training had finished before the kill: inconclusive"
    assert done.returncode == 0 and re.search(r"Lost executor \S+ on", done.stdout), done.stdout[-3000:]
    _assert_local_model(setup, model_dir)


def _gated(setup, job, args, name):
    """``tests/cluster.py gated <job>`` in the background: kill the executor whose task holds the
    gate (the job's first pass over the rows), then let the run finish. Returns (result, log
    text at the moment of the kill)."""
    gate = setup.root / f"{name}.gate"
    gate.mkdir()
    future, log = _submit_in_background(setup, HELPER, ["gated", job, "--gate", gate, *args], name)
    try:
        _wait_for(lambda: (gate / "held").exists(), future, "a task at the gate")
        task_pid = json.loads((gate / "held").read_text())["pid"]
        victim = executor_of(task_pid)
        assert victim in executor_pids(setup.cluster), (task_pid, victim)
        _kill(victim)
        text_at_kill = log.read_text(errors="replace") if log.exists() else ""
    finally:
        (gate / "release").touch()
    return future.result(timeout=600), text_at_kill


@pytest.mark.slow
def test_executor_killed_during_ingest_gives_the_local_model(setup):
    """The ingest pass (rows from Spark, as ``SoftmaxRegression.fit(df)``) loses the executor
    running one of its tasks: the task runs again on the new executor, the blocks are complete,
    training ends with exit 0 and the local model."""
    model_dir = setup.root / "killed-in-ingest"
    done, text_at_kill = _gated(setup, "train", ["--input", setup.data, "--model-dir", model_dir,
                                                 "--classes", "0,1,2", *TRAIN_ARGS], "train-killed-in-ingest")
    assert "ingested" not in text_at_kill and "iter " not in text_at_kill, text_at_kill[-2000:]
    assert done.returncode == 0 and re.search(r"Lost executor \S+ on", done.stdout), done.stdout[-3000:]
    assert "spark rows (arrow)" in done.stdout
    assert json.loads((model_dir / "metadata.json").read_text())["data_summary"]["rows"] == N_ROWS
    _assert_local_model(setup, model_dir)


@pytest.mark.slow
def test_executor_killed_during_evaluation_scores_every_row_once(setup, cluster_model):
    """An executor dies while evaluation scores and writes the output: exit 0; the output holds
    every input row exactly once with the model's probabilities; nothing half-written is left
    (no hidden temporary sibling); the metrics count every row."""
    from softmax_spark import load_model

    model_dir, _ = cluster_model
    output = setup.root / "scored-killed"
    done, _ = _gated(setup, "evaluate", ["--model-dir", model_dir, "--input", setup.data, "--output", output,
                                         "--no-plots"], "evaluate-killed")
    assert done.returncode == 0 and re.search(r"Lost executor \S+ on", done.stdout), done.stdout[-3000:]
    table = pq.read_table(output)
    ids = table.column("id").to_numpy()
    assert table.num_rows == N_ROWS and sorted(ids.tolist()) == list(range(N_ROWS))
    proba = np.array(table.column("probability").to_pylist(), dtype=np.float64)
    np.testing.assert_allclose(proba, load_model(model_dir).predict_proba(setup.X[ids]), rtol=0, atol=1e-12)
    metrics = json.loads(Path(f"{output}.metrics.json").read_text())
    assert metrics["rows_scored"] == N_ROWS and metrics["labelled_rows"] == N_ROWS
    assert [n for n in os.listdir(setup.root) if n.startswith(".scored-killed")] == []
