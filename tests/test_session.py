"""softmax_spark.session: the SparkSession defaults we rely on, and the Python workers' gc freeze."""

import gc

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
    monkeypatch.setattr(distributed, "_frozen", False)
    try:
        distributed._freeze_once()
        assert gc.get_freeze_count() > 0 and distributed._frozen
        count = gc.get_freeze_count()
        distributed._freeze_once()  # once per process: a second call freezes nothing more
        assert gc.get_freeze_count() == count
    finally:
        gc.unfreeze()
