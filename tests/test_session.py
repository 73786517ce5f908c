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
