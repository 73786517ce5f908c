"""softmax_spark.spark.session: the SparkSession defaults we rely on (and spark-submit's kept), the
lazily started SparkSession, the worker daemon on the installed pyspark, and the Python workers'
gc freeze."""

import gc
import os
import sys

import pytest

from softmax_spark.spark import tasks as distributed  # the task body's module (split out of distributed)
from softmax_spark.spark import session


def test_build_session_uses_unix_domain_sockets(spark):
    # the conftest session comes from build_session, as every job's does
    assert spark.sparkContext.getConf().get(session.UDS_KEY) == "true"


def test_a_setting_from_spark_submit_is_kept(monkeypatch):
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", f"--conf {session.UDS_KEY}=false pyspark-shell")
    assert session._user_set(session.UDS_KEY)
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "pyspark-shell")
    assert not session._user_set(session.UDS_KEY)


def _tracked(obj) -> bool:
    """Whether the collector still scans ``obj`` (frozen objects leave gc.get_objects())."""
    return any(o is obj for o in gc.get_objects())


def test_freeze_once_moves_the_workers_objects_out_of_the_collectors_reach(monkeypatch):
    # Checked per object, not with gc.get_freeze_count(): that count also falls when another thread
    # (the driver's Spark and Py4J threads) frees a frozen object, so comparing counts was flaky under
    # load. Module counts are passed explicitly for the same reason (other threads may import).
    monkeypatch.setattr(distributed, "_frozen", 0)
    try:
        before = [object()]
        assert _tracked(before)
        distributed._freeze_once(100)
        assert not _tracked(before) and distributed._frozen == 100
        after = [object()]
        distributed._freeze_once(100)  # nothing imported since: a second call freezes nothing more
        assert _tracked(after)
        distributed._freeze_once(101)  # a module more: the new objects are frozen too
        assert not _tracked(after) and distributed._frozen == 101
        distributed._frozen = 0
        distributed._freeze_once()  # by default the count is len(sys.modules)
        assert distributed._frozen > 0
    finally:
        gc.unfreeze()


def test_build_session_sets_the_log_level_from_the_start(spark):
    assert spark.sparkContext.getConf().get(session.LOG_LEVEL_KEY) == "WARN"


def test_a_lazy_session_starts_the_sparksession_on_first_use_only(spark):
    from pyspark.sql import SparkSession

    lazy = session.LazySession(spark.sparkContext, SparkSession.builder)
    assert lazy.sparkContext is spark.sparkContext
    assert not lazy.started
    assert lazy.range(3).count() == 3  # any other attribute is the session's, started now
    assert lazy.started
    assert lazy.session() is SparkSession.getActiveSession()


def test_training_on_local_parquet_needs_no_sparksession(spark, tmp_path):
    """The train job on a local Parquet path runs on the SparkContext alone (footers read with
    pyarrow, blocks ingested by an RDD job, the model written with pyarrow / Hadoop's
    FileSystem), so ``run_job``'s ``LazySession`` never pays the SparkSession's start-up."""
    import importlib.util
    from pathlib import Path

    from helpers import make_data, write_parquet
    from pyspark.sql import SparkSession

    X, y = make_data(n=300, d=4, c=3, seed=2)
    path = write_parquet(str(tmp_path / "train.parquet"), X, y)
    job = Path(__file__).resolve().parents[1] / "jobs" / "train.py"
    spec = importlib.util.spec_from_file_location("softmax_spark_train_job_lazy", job)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lazy = session.LazySession(spark.sparkContext, SparkSession.builder)
    code = module.main(["--input", path, "--model-dir", str(tmp_path / "model"), "--l2", "1e-3",
                        "--max-iter", "20"], spark=lazy)
    assert code == 0
    assert (tmp_path / "model" / "mllib").is_dir()
    assert not lazy.started


def _fake_pip_pyspark(root):
    """<root>/site/pyspark/{__init__.py, python/lib/pyspark.zip}: pip's layout."""
    package = root / "site" / "pyspark"
    (package / "python" / "lib").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "python" / "lib" / "pyspark.zip").write_bytes(b"")
    return str(root / "site"), str(package / "python" / "lib" / "pyspark.zip")


def test_the_worker_daemon_moves_only_a_zip_whose_installed_package_is_importable(tmp_path):
    from softmax_spark.worker_daemon import installed_copies_first

    site, zipped = _fake_pip_pyspark(tmp_path)
    py4j = str(tmp_path / "py4j-src.zip")
    assert installed_copies_first([zipped, py4j, "/stdlib", site]) == [py4j, "/stdlib", site, zipped]
    assert installed_copies_first([zipped, py4j, "/stdlib"]) == [zipped, py4j, "/stdlib"]  # not importable
    (tmp_path / "other" / "lib").mkdir(parents=True)
    stray = str(tmp_path / "other" / "lib" / "pyspark.zip")  # a Spark distribution's zip: no package around it
    assert installed_copies_first([stray, site]) == [stray, site]


def test_workers_and_their_daemon_import_the_installed_pyspark(spark):
    """build_session (the conftest's session: local[2], this venv's editable install) runs the
    daemon from softmax_spark.worker_daemon, so a task's pyspark is the compiled copy."""
    assert spark.sparkContext.getConf().get(session.DAEMON_MODULE_KEY) == session.WORKER_DAEMON

    def where(_rows):
        import pyspark

        yield pyspark.__file__

    files = spark.sparkContext.parallelize([0, 1], 2).mapPartitions(where).collect()
    assert len(files) == 2 and not any(".zip" in f for f in files), files


def test_the_worker_daemon_is_chosen_only_where_it_is_safe(monkeypatch, tmp_path):
    assert session.worker_daemon_settings("local[2]") == {session.DAEMON_MODULE_KEY: session.WORKER_DAEMON}
    assert session.worker_daemon_settings("spark://127.0.0.1:7077") == {}  # executors elsewhere
    monkeypatch.setenv("SPARK_HOME", str(tmp_path))  # another Spark's zip: another version
    assert session.worker_daemon_settings("local[2]") == {}
    monkeypatch.delenv("SPARK_HOME")
    # workers on another interpreter, or on this venv's base Python (a symlink target: no package)
    for other in ("/usr/bin/python3", getattr(sys, "_base_executable", "/usr/bin/python3")):
        monkeypatch.setenv("PYSPARK_PYTHON", other)
        assert session.worker_daemon_settings("local[2]") == {}
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("MASTER", "spark://elsewhere:7077")  # the launcher's own: the master is unknown here
    assert session.worker_daemon_settings(None) == {}
    monkeypatch.delenv("MASTER")
    # a source checkout put on sys.path by a job script: a fresh process would not find it
    monkeypatch.setattr(session, "__file__", str(tmp_path / "checkout" / "softmax_spark" / "spark" / "session.py"))
    assert not session._importable_in_a_fresh_process()
    assert session.worker_daemon_settings("local[2]") == {}


@pytest.mark.slow
def test_under_spark_submit_its_settings_are_kept_and_pyspark_is_compiled(tmp_path):
    """spark-submit's --conf values reach build_session (``_user_set`` asked a SparkConf made
    before PySpark connected to the JVM, which holds none: ours overrode the user's), and a job
    script's ``prefer_installed_pyspark`` imports pyspark from the installed package."""
    import subprocess
    from pathlib import Path

    script = tmp_path / "job.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from softmax_spark.worker_daemon import prefer_installed_pyspark\n"
        "prefer_installed_pyspark()\n"
        "import pyspark\n"
        "from softmax_spark.spark import session\n"
        "spark = session.build_session('t', lazy=True)\n"
        "conf = spark.sparkContext.getConf()\n"
        "print('RESULT', conf.get(session.UDS_KEY), conf.get(session.DAEMON_MODULE_KEY), '.zip' in pyspark.__file__)\n"
    )
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    done = subprocess.run([str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]",
                           "--conf", "spark.ui.enabled=false", "--conf", f"{session.UDS_KEY}=false", str(script)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RESULT false softmax_spark.worker_daemon False" in done.stdout, done.stdout[-2000:]


def test_a_lazy_session_stops_its_context_when_no_session_started_and_starts_none_after():
    class Stoppable:
        stopped = 0

        def stop(self):
            self.stopped += 1

    class Builder:
        def getOrCreate(self):
            raise AssertionError("no session may start")

    context = Stoppable()
    with session.LazySession(context, Builder()) as lazy:
        assert lazy.sparkContext is context
    assert context.stopped == 1
    lazy.stop()  # once only
    assert context.stopped == 1
    with pytest.raises(RuntimeError, match="stopped"):
        lazy.range(1)


def test_lazy_is_for_classic_sessions_only(monkeypatch):
    assert session._classic_mode({})
    assert not session._classic_mode({"spark.remote": "sc://localhost"})
    assert not session._classic_mode({"spark.api.mode": "connect"})
    monkeypatch.setenv("SPARK_API_MODE", "connect")
    assert not session._classic_mode({})
    assert session._classic_mode({"spark.api.mode": "classic"})


def test_a_worker_whose_jvm_left_ends_without_a_traceback():
    from softmax_spark.worker_daemon import quiet_when_the_jvm_left

    def closed(sock, authenticated):
        raise BrokenPipeError(32, "Broken pipe")

    def fine(sock, authenticated):
        return 0

    def other(sock, authenticated):
        raise ValueError("a real failure")

    assert quiet_when_the_jvm_left(closed)(None, True) == 1  # ends the worker's loop, silently
    assert quiet_when_the_jvm_left(fine)(None, True) == 0
    with pytest.raises(ValueError):
        quiet_when_the_jvm_left(other)(None, True)


def test_unix_sockets_live_in_a_private_directory(spark, monkeypatch):
    """Issue 24 item 5: PySpark's Unix-socket mode has no secret, so its socket files must sit in a
    0700 directory of ours (never java.io.tmpdir with umask permissions), even at umask 000."""
    conf = spark.sparkContext.getConf()
    directory = conf.get(session.UDS_DIR_KEY)
    assert directory and os.stat(directory).st_mode & 0o777 == 0o700
    address = spark.sparkContext._accumulatorServer.server_address
    assert isinstance(address, str) and os.path.dirname(address) == directory
    old = os.umask(0)
    try:
        fresh = session.private_socket_dir()
    finally:
        os.umask(old)
    assert os.stat(fresh).st_mode & 0o777 == 0o700
    # on a cluster the directory would not exist on the executors' hosts: the mode stays off
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    assert not session._local_master("spark://host:7077") and session._local_master("local[2,3]")
