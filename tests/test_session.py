"""softmax_spark.session: the SparkSession defaults we rely on, and the Python workers' gc freeze."""

import gc
import sys
import types

from softmax_spark import distributed, session


def test_build_session_uses_unix_domain_sockets(spark):
    # the conftest session comes from build_session, as every job's does
    assert spark.sparkContext.getConf().get(session.UDS_KEY) == "true"


def test_a_setting_from_spark_submit_is_kept(monkeypatch):
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", f"--conf {session.UDS_KEY}=false pyspark-shell")
    assert session._user_set(session.UDS_KEY)
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "pyspark-shell")
    assert not session._user_set(session.UDS_KEY)


def test_freeze_once_moves_the_workers_objects_out_of_the_collectors_reach(monkeypatch):
    monkeypatch.setattr(distributed, "_frozen", 0)
    try:
        distributed._freeze_once()
        assert gc.get_freeze_count() > 0 and distributed._frozen == len(sys.modules)
        count = gc.get_freeze_count()
        distributed._freeze_once()  # nothing imported since: a second call freezes nothing more
        assert gc.get_freeze_count() == count
        monkeypatch.setitem(sys.modules, "softmax_spark_test_fake_module", types.ModuleType("fake"))
        keep = [object() for _ in range(10)], {"a": [1]}  # noqa: F841 - tracked objects to freeze
        distributed._freeze_once()  # a module more: the new objects are frozen too
        assert gc.get_freeze_count() > count
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
