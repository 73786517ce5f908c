"""A throwaway Spark standalone cluster on 127.0.0.1 for the multi-executor tests.

* ``executor_python()`` — the interpreter of the executors: a venv (``<repo>/.venv-executor``,
  built once and reused; ``SOFTMAX_SPARK_EXECUTOR_VENV`` moves it) holding only numpy, pyarrow
  and threadpoolctl at the driver's versions — *not* softmax_spark, which the jobs ship
  themselves (``ship_package`` → ``addPyFile``), nor scipy, pyyaml, pandas or matplotlib, which
  only the driver uses.
* ``StandaloneCluster`` — a master and N one-core workers started with ``spark-class``, each
  worker with its own ``SPARK_WORKER_DIR`` and ``SPARK_LOCAL_DIRS`` (so the block files of two
  executors live in different directories). With ``separate_disks`` (needs ``unshare`` and the
  right to mount, i.e. root: ``can_separate_disks()``) each worker runs in a mount namespace
  where the other workers' local directories are empty tmpfs mounts — as if on separate
  machines, a task cannot read another executor's block files. ``stop()`` kills every process
  it started, with its descendants (PySpark's daemon puts itself in a process group of its own).
* ``spark_submit()`` — runs one ``spark-submit`` in its own process group, killed whole on timeout.

Run as a script it is a driver for ``test_cluster.py``: ``spark-submit tests/cluster.py
blocks-check ...`` (the misplaced-task check, see ``blocks_check``) and ``... gated train|evaluate
...`` (a job whose first pass over the rows waits at a gate until the test has killed the
executor running it, see ``gated_job``). ``executor_pids`` / ``executor_of`` find executor JVMs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# what the tasks import besides the shipped package (scipy, pyyaml, pandas, matplotlib: driver only)
EXECUTOR_PACKAGES = ("numpy", "pyarrow", "threadpoolctl")
LOOPBACK = "127.0.0.1"
# short-lived test JVMs: the C1 compiler only and the serial GC cost about a third less CPU
FAST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def driver_python() -> str:
    """The project's venv interpreter (has softmax_spark installed), else this one."""
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# the executors' Python
# ---------------------------------------------------------------------------------------------
class ExecutorVenvError(RuntimeError):
    """The executor venv could not be built (no package index reachable, …)."""


def executor_python(venv: str | os.PathLike | None = None) -> str:
    """Path of a Python without softmax_spark: numpy, pyarrow and threadpoolctl pinned to
    the driver's versions (pickled numpy arrays cross between them). Built on first use under a
    file lock; a stamp file holding the interpreter version and the pins makes later calls free."""
    from importlib import metadata

    venv = Path(venv or os.environ.get("SOFTMAX_SPARK_EXECUTOR_VENV") or REPO / ".venv-executor")
    pins = [f"{name}=={metadata.version(name)}" for name in EXECUTOR_PACKAGES]
    wanted = json.dumps({"python": sys.version.split()[0], "packages": pins})
    python = venv / "bin" / "python"
    stamp = venv / ".softmax_spark-executor-stamp"
    lock_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"softmax_spark-executor-venv-{os.getuid()}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.exists() and stamp.read_text() == wanted and python.exists()):
            shutil.rmtree(venv, ignore_errors=True)
            # venv from a venv's interpreter uses the same base Python (same minor version:
            # PySpark refuses a driver and workers of different versions)
            steps = [
                [sys.executable, "-m", "venv", str(venv)],
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
            ]
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True)
                if done.returncode != 0:
                    shutil.rmtree(venv, ignore_errors=True)
                    raise ExecutorVenvError(f"{' '.join(step)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
            stamp.write_text(wanted)
    probe = subprocess.run([str(python), "-c", "import softmax_spark"], capture_output=True, cwd="/")
    if probe.returncode == 0:
        raise ExecutorVenvError(f"{python} can import softmax_spark; the executors must not have it")
    return str(python)


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------
def can_separate_disks() -> bool:
    """Whether this user may run a process in a mount namespace of its own with a tmpfs mount."""
    import tempfile

    if shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                f"mount -t tmpfs -o size=1m tmpfs '{d}'"], capture_output=True)
    return probe.returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def kill_tree(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (started with ``start_new_session``) and every
    descendant outside it; SIGKILL whatever is left after ``grace`` seconds."""
    if proc.poll() is not None and not descendants(proc.pid):
        return
    pids = descendants(proc.pid) | {proc.pid}

    def signal_all(sig):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.poll() is not None and not any(alive(p) for p in pids):
            break
        time.sleep(0.1)
    pids |= descendants(proc.pid)
    signal_all(signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def base_env(**extra) -> dict:
    """The environment of every Spark process here: loopback only, no stray configuration,
    the driver venv's bin first on PATH (spark-submit, spark-class)."""
    env = dict(os.environ)
    for key in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_CONF_DIR", "SPARK_LOCAL_DIRS",
                "SPARK_WORKER_DIR", "PYTHONPATH", "SPARK_MASTER_HOST"):
        env.pop(key, None)
    env.update(
        PATH=str(Path(driver_python()).parent) + os.pathsep + os.environ.get("PATH", ""),
        SPARK_HOME=str(spark_home()),
        SPARK_LOCAL_IP=LOOPBACK,
        SPARK_LOCAL_HOSTNAME="localhost",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class StandaloneCluster:
    """``with StandaloneCluster(root) as cluster: cluster.url`` — a master and ``workers``
    workers of ``cores`` cores on 127.0.0.1; logs and directories under ``root``."""

    def __init__(self, root, workers: int = 2, cores: int = 1, memory: str = "1g", separate_disks: bool = False):
        self.root = Path(root)
        self.separate_disks = separate_disks
        self.n_workers, self.cores, self.memory = workers, cores, memory
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.worker_dirs: list[Path] = []  # SPARK_WORKER_DIR of each worker
        self.local_dirs: list[Path] = []  # SPARK_LOCAL_DIRS of each worker
        self.url = ""
        self.web_port = 0

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, name: str, cls: str, args: list[str], hide: list[Path] = (), **env) -> None:
        log = self.root / f"{name}.log"
        self.logs.append(log)
        conf_dir = self.root / "conf"  # empty: nothing from a spark-defaults.conf elsewhere
        conf_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(spark_home() / "bin" / "spark-class"), cls, *args]
        if hide:
            # a mount namespace of its own, with an empty tmpfs over each directory in ``hide``
            mounts = " && ".join(f"mount -t tmpfs -o size=1m tmpfs '{d}'" for d in hide)
            cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'{mounts} && exec "$0" "$@"', *cmd]
        with open(log, "w") as out:
            self.procs.append(subprocess.Popen(
                cmd,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root,
                env=base_env(SPARK_CONF_DIR=conf_dir, SPARK_DAEMON_MEMORY="256m", SPARK_DAEMON_JAVA_OPTS=FAST_JVM, **env),
                start_new_session=True,
            ))

    def start(self, timeout: float = 120.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        port, self.web_port = free_port(), free_port()
        self.url = f"spark://{LOOPBACK}:{port}"
        self._spawn("master", "org.apache.spark.deploy.master.Master",
                    ["--host", LOOPBACK, "--port", str(port), "--webui-port", str(self.web_port)])
        self._wait(lambda state: True, timeout, "the master's web UI")
        for i in range(self.n_workers):
            work, local = self.root / f"worker-{i}" / "work", self.root / f"worker-{i}" / "local"
            work.mkdir(parents=True, exist_ok=True)
            local.mkdir(parents=True, exist_ok=True)
            self.worker_dirs.append(work)
            self.local_dirs.append(local)
        for i, (work, local) in enumerate(zip(self.worker_dirs, self.local_dirs)):
            # separate_disks: each worker sees only its own local dir, as on separate machines
            hide = [d for d in self.local_dirs if d != local] if self.separate_disks else []
            self._spawn(f"worker-{i}", "org.apache.spark.deploy.worker.Worker",
                        ["--cores", str(self.cores), "--memory", self.memory, "--host", LOOPBACK,
                         "--webui-port", str(free_port()), self.url],
                        hide=hide, SPARK_WORKER_DIR=work, SPARK_LOCAL_DIRS=local)
        self._wait(lambda state: state.get("aliveworkers", 0) >= self.n_workers, timeout,
                   f"{self.n_workers} registered workers")

    @property
    def spark_conf(self) -> dict:
        """What an application on this cluster must set: with separate disks, no reading of a
        same-host executor's shuffle files straight from its directory (hidden from the others)."""
        return {"spark.shuffle.readHostLocalDisk": "false"} if self.separate_disks else {}

    def state(self) -> dict:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.web_port}/json/", timeout=5) as r:
            return json.load(r)

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for proc, log in zip(self.procs, self.logs):
                if proc.poll() is not None:
                    raise RuntimeError(f"{log.stem} exited ({proc.returncode}):\n{self.log_tail(log)}")
            try:
                if ready(self.state()):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}:\n" + "\n".join(map(self.log_tail, self.logs)))
            time.sleep(0.3)

    @staticmethod
    def log_tail(log: Path, chars: int = 3000) -> str:
        try:
            return f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}"
        except OSError:
            return f"--- {log.name}: unreadable"

    def executor_logs(self, chars: int = 3000) -> str:
        """The stderr of every executor that ran (the last ``chars`` of each)."""
        parts = [self.log_tail(p, chars) for d in self.worker_dirs for p in sorted(d.glob("app-*/*/stderr"))]
        return "\n".join(parts)

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers (and their executors) first, then the master
            kill_tree(proc)
        self.procs = []


def spark_submit(script, args, master: str, conf: dict | None = None, log: Path | None = None,
                 timeout: float = 300.0, executor_python_path: str | None = None) -> subprocess.CompletedProcess:
    """``spark-submit --master <master> --conf … <script> <args>``: the driver runs
    ``driver_python()``, the Python workers ``executor_python_path`` (default: the driver's).
    Output (stdout and stderr) goes to ``log`` and is returned as ``stdout``."""
    conf = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.pyspark.driver.python": driver_python(),
        "spark.pyspark.python": executor_python_path or driver_python(),
        "spark.driver.host": LOOPBACK,
        "spark.driver.extraJavaOptions": FAST_JVM,
        "spark.executor.extraJavaOptions": FAST_JVM,
        **(conf or {}),
    }
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", master]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [str(script), *map(str, args)]
    log = Path(log) if log else None
    with open(log, "w") if log else open(os.devnull, "w") as out:
        out.write(" ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=base_env(PYSPARK_DRIVER_PYTHON=driver_python()), cwd=REPO,
                                start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            raise
        finally:
            kill_tree(proc, grace=2.0)  # nothing it started outlives it
    text = log.read_text(errors="replace") if log else ""
    return subprocess.CompletedProcess(cmd, proc.returncode, text, "")


# ---------------------------------------------------------------------------------------------
# driver of the misplaced-task check (spark-submit tests/cluster.py blocks-check …)
# ---------------------------------------------------------------------------------------------
def block_files(local_dirs, run_id: str = "*") -> dict[str, list[str]]:
    """The block files (``softmax_spark-<run>/part-*``) under each worker's SPARK_LOCAL_DIRS."""
    return {str(d): sorted(str(p) for p in Path(d).glob(f"**/softmax_spark-{run_id}/part-*")) for d in local_dirs}


class _Blocks:
    """One ingest and its DistributedLoss, rebuilt by the driver when a pass reports missing files."""

    def __init__(self, build, n_classes):
        self.build, self.rebuilds = build, 0
        self.data = build()
        self.run_ids = [self.data.run_id]
        self.loss = _distributed_loss(self.data.blocks, n_classes, self.data.summary.n_features, self.rebuild)

    def rebuild(self):
        self.rebuilds += 1
        self.data.release()
        self.data = self.build()
        self.run_ids.append(self.data.run_id)
        return self.data.blocks


def _distributed_loss(blocks, n_classes, n_features, rebuild):
    from softmax_spark.spark.distributed import DistributedLoss

    return DistributedLoss(blocks, n_classes, n_features, rebuild=rebuild)


def blocks_check(argv) -> int:
    """A pass whose tasks must run on the executor *without* their block files.

    Ingests ``--input`` twice over the cluster — the direct Parquet path (descriptors carry the
    row-group slices) and the Spark-rows path (``df.repartition``; they do not) — and evaluates
    the distributed loss of each. Then one executor is kept busy by a sleeping task, so the next
    pass of each runs all its tasks on the other executor, which (with separate disks) lacks the
    busy one's block files: the direct path must write copies there from the input, the rows
    path must report them missing and have the driver rebuild; both must return the same sums.
    Finally ``release()`` must leave no block file of either. Writes a JSON report to ``--out``.
    """
    import argparse
    import threading

    import numpy as np

    sys.path.insert(0, str(REPO))
    from softmax_spark.core.features import FeatureSpec
    from softmax_spark.spark.ingest import _local_dir, discover_classes, ingest, read_parquet
    from softmax_spark.cli.jobs_common import ship_package
    from softmax_spark.spark.session import build_session

    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--local-dirs", required=True, help="comma-separated SPARK_LOCAL_DIRS of the workers")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    local_dirs = args.local_dirs.split(",")
    busy_file, release_file = args.out + ".busy", args.out + ".release"

    def probe(_):
        import softmax_spark

        yield {"python": sys.executable, "softmax_spark": softmax_spark.__file__, "local_dir": _local_dir(),
               "sees": {d: sorted(os.listdir(d)) for d in local_dirs}}

    def sleep_until_released(_):
        with open(busy_file + ".tmp", "w") as f:
            f.write(_local_dir())
        os.replace(busy_file + ".tmp", busy_file)
        deadline = time.time() + 300
        while not os.path.exists(release_file) and time.time() < deadline:
            time.sleep(0.05)
        yield 0

    spark = build_session("softmax_spark-blocks-check")
    report: dict = {}
    try:
        ship_package(spark)
        sc = spark.sparkContext
        n = 2 * len(local_dirs)
        report["tasks"] = sc.parallelize(range(n), n).mapPartitions(probe).collect()
        df = read_parquet(spark, args.input)
        spec = FeatureSpec(features_col="features")
        classes = discover_classes(df, "label")
        files = df.inputFiles()
        runs = {
            "direct": _Blocks(lambda: ingest(df, spec, "label", classes, n_partitions=args.partitions, files=files),
                              len(classes)),
            "rows": _Blocks(lambda: ingest(df.repartition(args.partitions), spec, "label", classes,
                                           n_partitions=args.partitions), len(classes)),
        }
        report["source"] = {name: run.data.source for name, run in runs.items()}
        report["after_ingest"] = {name: block_files(local_dirs, run.data.run_id) for name, run in runs.items()}
        n_features = runs["direct"].data.summary.n_features
        rng = np.random.default_rng(3)
        coef, intercept = rng.normal(size=(len(classes), n_features)), rng.normal(size=len(classes))
        report["coef"], report["intercept"], report["classes"] = coef.tolist(), intercept.tolist(), classes
        passes = {name: [run.loss(coef, intercept)] for name, run in runs.items()}

        sleeper = threading.Thread(target=lambda: sc.parallelize([0], 1).mapPartitions(sleep_until_released).collect())
        sleeper.start()
        try:
            deadline = time.time() + 120
            while not os.path.exists(busy_file) and time.time() < deadline:
                time.sleep(0.05)
            report["busy_local_dir"] = Path(busy_file).read_text()
            for name, run in runs.items():
                passes[name].append(run.loss(coef, intercept))
            report["while_busy"] = {name: block_files(local_dirs, run.data.run_id) for name, run in runs.items()}
        finally:
            Path(release_file).touch()
            sleeper.join(timeout=120)
        report["rebuilds"] = {name: run.rebuilds for name, run in runs.items()}
        report["run_ids"] = {name: run.run_ids for name, run in runs.items()}
        report["passes"] = {
            name: [{"loss": r.loss, "grad_coef": r.grad_coef.tolist(), "grad_intercept": r.grad_intercept.tolist(),
                    "weight_sum": r.weight_sum, "n_rows": r.n_rows} for r in results]
            for name, results in passes.items()
        }
        for run in runs.values():
            run.data.release()
        report["after_release"] = {name: block_files(local_dirs, run.data.run_id) for name, run in runs.items()}
    finally:
        Path(args.out).write_text(json.dumps(report, indent=1, default=str))
        spark.stop()
    return 0


# ---------------------------------------------------------------------------------------------
# executors: find and kill one (the executor-loss tests)
# ---------------------------------------------------------------------------------------------
EXECUTOR_MAIN = "CoarseGrainedExecutorBackend"


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def executor_pids(cluster: "StandaloneCluster") -> list[int]:
    """The executor JVMs (``CoarseGrainedExecutorBackend``) running under this cluster's workers."""
    found = set()
    for proc in cluster.procs:
        found |= {pid for pid in descendants(proc.pid) if EXECUTOR_MAIN in _cmdline(pid) and alive(pid)}
    return sorted(found)


def executor_of(pid: int) -> int | None:
    """The executor JVM that ``pid`` (a Python worker of a task) runs under: its nearest ancestor
    whose command line is ``CoarseGrainedExecutorBackend``."""
    while pid and pid > 1:
        if EXECUTOR_MAIN in _cmdline(pid):
            return pid
        pid = _parent(pid)
    return None


# ---------------------------------------------------------------------------------------------
# driver of the gated executor-loss runs (spark-submit tests/cluster.py gated …)
# ---------------------------------------------------------------------------------------------
def _gate(gate_dir: str):
    """A ``mapInArrow`` function passing batches through unchanged, except that the first task
    to run it (once per ``gate_dir``) records its pid in ``gate_dir/held`` and waits — for the
    test to SIGKILL the executor it runs in — until ``gate_dir/release`` exists (at most 10 min).
    Uses only the standard library: the executors' Python has no softmax_spark of its own."""

    def gate(batches):
        import json as json_
        import os as os_
        import time as time_

        held = os_.path.join(gate_dir, "held")
        try:
            fd = os_.open(held + ".tmp", os_.O_CREAT | os_.O_EXCL | os_.O_WRONLY)
        except FileExistsError:
            fd = None
        if fd is not None:
            with os_.fdopen(fd, "w") as f:
                json_.dump({"pid": os_.getpid()}, f)
            os_.replace(held + ".tmp", held)
            deadline = time_.time() + 600
            while not os_.path.exists(os_.path.join(gate_dir, "release")) and time_.time() < deadline:
                time_.sleep(0.05)
        yield from batches

    return gate


def gated_job(argv) -> int:
    """``gated train --gate DIR <train flags>`` or ``gated evaluate --gate DIR <evaluate flags>``:
    the job with its input read through ``_gate`` (a mapInArrow in the same stage as the job's
    first pass over the rows), so the test can kill an executor while that pass runs.

    train: ``fit_dataframe`` on the gated DataFrame — the rows come from Spark (the notebook
    path, ``SoftmaxRegression.fit(df)``); give ``--classes`` so the first pass is the ingest.
    evaluate: ``jobs/evaluate.py``'s ``main`` with ``evaluation.read_parquet`` returning the gated
    frame, so the first pass is the scoring-and-write of the output."""
    import importlib.util

    sys.path.insert(0, str(REPO))
    job, flag, gate_dir, rest = argv[0], argv[1], argv[2], argv[3:]
    assert flag == "--gate", argv
    from softmax_spark.spark import ingest as ingest_module
    from softmax_spark.cli.jobs_common import run_job

    plain_read = ingest_module.read_parquet

    def gated_read(spark, path):
        frame = plain_read(spark, path)
        return frame.mapInArrow(_gate(gate_dir), frame.schema)

    if job == "train":
        from softmax_spark.fit.config import TrainConfig

        def run(spark, cfg):
            from softmax_spark.fit.training import fit_dataframe

            fit_dataframe(spark, cfg, df=gated_read(spark, cfg.input))
            return 0

        return run_job("softmax_spark-gated-train", TrainConfig, run, rest)
    from softmax_spark.evaluate import evaluation

    evaluation.read_parquet = gated_read  # the name evaluation.run reads its input with
    spec = importlib.util.spec_from_file_location("evaluate_job", REPO / "jobs" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(rest)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "blocks-check":
        sys.exit(blocks_check(sys.argv[2:]))
    if len(sys.argv) > 2 and sys.argv[1] == "gated":
        sys.exit(gated_job(sys.argv[2:]))
    sys.exit(f"usage: spark-submit {sys.argv[0]} blocks-check --input P --local-dirs A,B --out F\n"
             f"       spark-submit {sys.argv[0]} gated train|evaluate --gate DIR <job flags>")
