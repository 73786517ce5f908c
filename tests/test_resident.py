"""softmax_spark.spark.resident: passes on tasks that stay for a fit give the sums of a Spark job per pass,
bit for bit; they give the cores back (close, idle timeout) and fall back to a job when they fail."""

from __future__ import annotations

import time

import numpy as np
import pytest

from helpers import make_data, to_df
from softmax_spark.spark import resident
from softmax_spark.fit.config import TrainConfig
from softmax_spark.spark.distributed import DistributedLoss
from softmax_spark.core.features import FeatureSpec
from softmax_spark.spark.ingest import ingest
from softmax_spark.core.kernels import LossGradKernel
from softmax_spark.fit.training import fit_dataframe


@pytest.fixture
def ingested(spark):
    X, y = make_data(n=600, d=5, c=3, seed=3)
    data = ingest(to_df(spark, X, y), FeatureSpec(features_col="features"), "label", [0, 1, 2], None,
                  "float64", 2)
    yield data
    data.release()
    resident.close()


def _params(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 5)), rng.normal(size=3)


@pytest.mark.parametrize("master, cores", [("local", 1), ("local[2]", 2), ("local[3, 2]", 3), ("local[*]", None),
                                           ("spark://127.0.0.1:7077", None), ("local-cluster[2,1,1024]", None),
                                           ("yarn", None), ("", None)])
def test_local_cores_reads_spark_master_urls(master, cores):
    import os

    expected = (os.cpu_count() or 1) if master == "local[*]" else cores
    assert resident.local_cores(master) == expected


def test_resident_passes_give_the_sums_of_a_job_per_pass(spark, ingested):
    by_job = DistributedLoss(ingested, 3, 5, resident=False)
    on_tasks = DistributedLoss(ingested, 3, 5)
    for seed in range(3):
        a, b = by_job(*_params(seed)), on_tasks(*_params(seed))
        assert a.loss == b.loss and a.weight_sum == b.weight_sum and a.n_rows == b.n_rows == 600
        assert np.array_equal(a.grad_coef, b.grad_coef) and np.array_equal(a.grad_intercept, b.grad_intercept)
    # minibatches draw the same rows
    a = by_job(*_params(7), iteration=4, batch_fraction=0.3, seed=1)
    b = on_tasks(*_params(7), iteration=4, batch_fraction=0.3, seed=1)
    assert a.n_rows == b.n_rows and a.loss == b.loss and np.array_equal(a.grad_coef, b.grad_coef)
    assert on_tasks.passes == 4 and resident._pool is not None
    # (each pass of by_job closed the tasks first: a job needs the cores they hold)
    for _ in range(3):
        on_tasks(*_params(0))
    assert resident._pool.passes == 4  # the minibatch pass started these tasks


def test_close_gives_the_cores_back_at_once(spark, ingested):
    DistributedLoss(ingested, 3, 5)(*_params(0))
    assert resident._pool is not None
    resident.close()
    assert resident._pool is None
    started = time.perf_counter()
    assert spark.sparkContext.parallelize(range(4), 2).sum() == 6
    assert time.perf_counter() - started < resident.IDLE_SECONDS


def test_idle_tasks_end_by_themselves(spark, ingested, monkeypatch):
    monkeypatch.setattr(resident, "IDLE_SECONDS", 0.3)
    loss = DistributedLoss(ingested, 3, 5)
    first = loss(*_params(0))
    pool = resident._pool
    pool.thread.join(30)
    assert not pool.thread.is_alive() and pool.error is None  # the job ended: every task returned
    again = loss(*_params(0))  # new tasks, same sums
    assert resident._pool is not pool and again.loss == first.loss


def test_a_failing_task_falls_back_to_a_spark_job(spark, ingested):
    class FailsOnResidentTasks(LossGradKernel):
        def add(self, acc, payload, X, y, w):
            from pyspark import TaskContext

            if "softmax_spark-resident" in (TaskContext.get().getLocalProperty("spark.job.tags") or ""):
                raise RuntimeError("only on a resident task")
            return super().add(acc, payload, X, y, w)

    loss = DistributedLoss(ingested, 3, 5)
    reference = loss(*_params(0))
    assert resident._pool is not None
    acc = loss.run(FailsOnResidentTasks(True), _params(0))  # a local class: pickled by value, as Spark does
    assert acc.result()[0] == reference.loss
    assert resident._pool is None and not loss.resident  # closed; this loss runs jobs from now on
    assert loss(*_params(0)).loss == reference.loss and resident._pool is None


def test_more_partitions_than_cores_are_spread_over_the_cores(spark):
    X, y = make_data(n=300, d=5, c=3, seed=4)
    data = ingest(to_df(spark, X, y, partitions=3), FeatureSpec(features_col="features"), "label", [0, 1, 2],
                  None, "float64", 3)
    try:
        by_job = DistributedLoss(data, 3, 5, resident=False)(*_params(0))
        on_tasks = DistributedLoss(data, 3, 5)(*_params(0))
        assert resident._pool.n_tasks == 2
        assert on_tasks.loss == by_job.loss and np.array_equal(on_tasks.grad_coef, by_job.grad_coef)
    finally:
        data.release()


def test_training_with_and_without_resident_tasks_gives_the_same_model(spark, tmp_path):
    X, y = make_data(n=500, d=4, c=3, seed=8)
    df = to_df(spark, X, y)
    models = [fit_dataframe(spark, TrainConfig(input="<df>", l2=1e-3, optimizer="lbfgs", resident_tasks=flag),
                            df=df, write=False) for flag in (False, True)]
    assert np.array_equal(models[0].coef, models[1].coef)
    assert np.array_equal(models[0].intercept, models[1].intercept)
    assert models[0].metadata["passes"] == models[1].metadata["passes"]
    assert resident._pool is None  # the fit's end gave the cores back


def test_tasks_of_an_interrupted_pass_never_serve_another(spark, ingested):
    loss = DistributedLoss(ingested, 3, 5)
    first = loss(*_params(0))
    pool = resident._pool
    pool.busy = True  # what a KeyboardInterrupt while waiting for the answers leaves
    assert not pool.fresh()
    again = loss(*_params(0))  # new tasks: the old ones' late answers are never read
    assert resident._pool is not pool and again.loss == first.loss


def test_the_resident_job_stays_in_the_callers_job_group(spark, ingested):
    """Cancelling the caller's job group (a notebook's cell cancel) reaches the resident tasks, as
    it reached each pass's job."""
    sc = spark.sparkContext
    sc.setJobGroup("softmax_spark-test-group", "a caller's group")
    try:
        DistributedLoss(ingested, 3, 5)(*_params(0))
        jobs = sc.statusTracker().getJobIdsForGroup("softmax_spark-test-group")
        assert resident._pool is not None and len(jobs) == 2  # the descriptors' collect and the resident job
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)


# --- the channel's security (issue 24) ---------------------------------------------------------


class _CreatesFile:
    """Unpickling this creates ``path``: a request that must never be executed."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def _framed(data: bytes) -> bytes:
    """``data`` as one ``multiprocessing.connection.Connection`` message (4-byte length first)."""
    import struct

    return struct.pack("!i", len(data)) + data


def _read_for(sock, seconds):
    """Whatever ``sock`` receives within ``seconds`` (until EOF)."""
    import socket

    got, end = b"", time.monotonic() + seconds
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except (socket.timeout, OSError):
            break
        if not chunk:
            break
        got += chunk
    return got


@pytest.mark.parametrize("reply", ["a pickled request", "a made-up proof"])
def test_a_fake_driver_gets_nothing_run_and_never_learns_the_key(tmp_path, reply):
    """A process that took the driver's address (it re-bound the port after the listener closed)
    answers a task's connection: without the key it cannot prove itself, so the task sends nothing
    derived from the key, executes nothing and returns."""
    import pickle
    import secrets
    import socket
    import threading

    marker = tmp_path / "executed"
    request = pickle.dumps(_CreatesFile(str(marker)))
    fake = socket.create_server(("127.0.0.1", 0))
    received = []

    def impersonate():
        sock, _ = fake.accept()
        received.append(_read_for(sock, 1.0))
        sock.sendall(_framed(request) if reply == "a pickled request" else _framed(secrets.token_bytes(64)))
        received.append(_read_for(sock, 1.0))
        sock.close()

    thread = threading.Thread(target=impersonate, daemon=True)
    thread.start()
    key = secrets.token_bytes(32)
    try:
        out = list(resident._serve(fake.getsockname(), key, 0.5)(iter(())))
    finally:
        thread.join(10)
        fake.close()
    assert out == [] and not marker.exists()
    everything = b"".join(received)
    assert everything and key not in everything  # it spoke (a challenge), never the key
    assert len(received[1]) == 0  # after a wrong answer, nothing more (no proof of the task)


def test_a_late_or_retried_task_attempt_does_not_connect():
    """A task started after the connect deadline returns at once without connecting (so it
    cannot meet whoever holds the address by then); its pass runs as a job."""
    import secrets
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    try:
        serve = resident._serve(server.getsockname(), secrets.token_bytes(32), 0.5, time.time() - 1)
        assert list(serve(iter(()))) == []
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


def test_intruders_on_the_drivers_socket_get_nothing_and_do_not_disturb_the_fit(spark, ingested, tmp_path,
                                                                                  monkeypatch):
    """While the tasks connect: three silent connections (held far longer than the connect
    deadline), one sending a pickle, one with a wrong proof. The tasks still connect (handshakes
    run side by side), the pass runs on them with the sums of a job; nothing an intruder sent is
    unpickled, none gets a request. The socket is in a 0700 directory, removed at close."""
    import os
    import pickle
    import secrets
    import socket
    import stat
    import threading

    monkeypatch.setattr(resident, "HANDSHAKE_SECONDS", 60.0)
    monkeypatch.setattr(resident, "CONNECT_SECONDS", 20.0)
    marker = tmp_path / "executed"
    intruders, got, threads = [], {}, []

    def connect(address):
        sock = socket.socket(socket.AF_UNIX if isinstance(address, str) else socket.AF_INET)
        sock.connect(address)
        intruders.append(sock)
        return sock

    def pickler(address):
        sock = connect(address)
        sock.sendall(_framed(pickle.dumps(_CreatesFile(str(marker)))))
        got["pickler"] = _read_for(sock, 2.0)

    def wrong_proof(address):
        sock = connect(address)
        sock.sendall(_framed(resident._HELLO + secrets.token_bytes(32)))
        answer = _read_for(sock, 1.0)
        sock.sendall(_framed(secrets.token_bytes(32)))
        got["wrong proof"] = answer + _read_for(sock, 2.0)

    listen = resident._listen

    def listen_with_intruders():
        server, address, directory = listen()
        for _ in range(3):
            connect(address)  # silent
        for intruder in (pickler, wrong_proof):
            threads.append(threading.Thread(target=intruder, args=(address,), daemon=True))
            threads[-1].start()
        return server, address, directory

    monkeypatch.setattr(resident, "_listen", listen_with_intruders)
    try:
        by_job = DistributedLoss(ingested, 3, 5, resident=False)(*_params(0))
        loss = DistributedLoss(ingested, 3, 5)
        on_tasks = loss(*_params(0))
        pool = resident._pool
        assert pool is not None and pool.passes == 1 and loss.resident  # not the job fallback
        assert on_tasks.loss == by_job.loss and np.array_equal(on_tasks.grad_coef, by_job.grad_coef)
        directory = os.path.dirname(pool.address)
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        # a connection after the start is never answered: it waits in the backlog, or the accept
        # loop's last turn (up to 0.2 s after the start) closes it unread
        late = connect(pool.address)
        try:
            late.sendall(_framed(resident._HELLO + secrets.token_bytes(32)))
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert _read_for(late, 0.5) == b""
        assert loss(*_params(1)).loss == DistributedLoss(ingested, 3, 5, resident=False)(*_params(1)).loss
        for thread in threads:
            thread.join(10)
        assert not marker.exists()
        assert got["pickler"] == b""  # refused unread: no answer at all
        # the driver's half of the handshake (its nonce and proof, 4 + 64 bytes), then the close
        assert len(got["wrong proof"]) == 4 + 64
        resident.close()
        assert not os.path.exists(directory)
    finally:
        for sock in intruders:
            sock.close()


_CRASH_SCRIPT = r"""
import json, os, signal, socket, struct, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from helpers import make_data, to_df
from softmax_spark.spark import resident
from softmax_spark.fit.config import TrainConfig
from softmax_spark.spark.session import build_session
from softmax_spark.fit.training import fit_dataframe

spark = build_session("softmax_spark-resident-crash", master="local[2,3]", conf={
    "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
spark.sparkContext.setLogLevel("OFF")
X, y = make_data(n=2000, d=6, c=3, seed=5)
df = to_df(spark, X, y).cache()
killed = []
run = resident._Pool.run

def run_then_kill(self, *args):
    if self.passes == 2 and not killed:  # SIGKILL the Python worker of one resident task
        with socket.socket(fileno=os.dup(self.conns[0].fileno())) as sock:
            pid, _, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if sock.family != socket.AF_UNIX or pid <= 0:  # (kill(0) would hit this process group)
            raise SystemExit(f"no peer pid on the resident socket ({sock.family!r}, pid {pid})")
        os.kill(pid, signal.SIGKILL)
        while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z":
            time.sleep(0.01)
        killed.append(pid)
    return run(self, *args)

resident._Pool.run = run_then_kill
models = [fit_dataframe(spark, TrainConfig(input="<df>", l2=1e-3, optimizer="lbfgs", resident_tasks=flag),
                        df=df, write=False) for flag in (True, False)]
print(json.dumps({"killed": killed,
                  "coef_equal": bool(np.array_equal(models[0].coef, models[1].coef)),
                  "intercept_equal": bool(np.array_equal(models[0].intercept, models[1].intercept)),
                  "passes": [m.metadata["passes"] for m in models]}))
spark.stop()
"""


@pytest.mark.slow
def test_a_killed_resident_worker_sends_its_passes_to_jobs(tmp_path):
    """Under local[2,3] the Python worker of one resident task is SIGKILLed mid-fit: Spark
    retries that task, the retry returns at once, the pass and the rest run as jobs, and the fit
    ends with the model of a fit without resident tasks."""
    import json
    import os
    import subprocess
    import sys

    script = tmp_path / "crash.py"
    script.write_text(_CRASH_SCRIPT)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    done = subprocess.run([sys.executable, str(script), os.path.dirname(__file__)], capture_output=True,
                          text=True, timeout=600, env=env, start_new_session=True)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["killed"]) == 1
    assert result["coef_equal"] and result["intercept_equal"] and result["passes"][0] == result["passes"][1]
