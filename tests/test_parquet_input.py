"""parquet_input: a local Parquet input's files and Spark schema from its footers, and Spark's
DataFrame whenever the footers do not settle them."""

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from softmax_spark.spark.parquet_input import ParquetFiles, open_parquet


def _table(n=6, seed=0, extra=None):
    rng = np.random.default_rng(seed)
    columns = {
        "features": pa.array([list(r) for r in rng.normal(size=(n, 3))], type=pa.list_(pa.float64())),
        "pixels": pa.array([list(r) for r in rng.normal(size=(n, 2)).astype(np.float32)], type=pa.list_(pa.float32())),
        "label": pa.array(rng.integers(0, 3, n), type=pa.int32()),
        "weight": pa.array(rng.random(n)),
        "name": pa.array([f"r{i}" for i in range(n)]),
    }
    columns.update(extra or {})
    return pa.table(columns)


def _same_as_spark(spark, path, opened):
    df = spark.read.parquet(str(path))
    assert isinstance(opened, ParquetFiles)
    assert [(f.name, f.dataType) for f in opened.schema.fields] == [(f.name, f.dataType) for f in df.schema.fields]
    assert opened.inputFiles() == sorted(df.inputFiles())
    assert opened.columns == df.columns


def test_a_flat_directory_is_read_from_its_footers_as_spark_reads_it(spark, tmp_path):
    root = tmp_path / "in put%1,k=v"  # space and % percent-encoded, "," and "=" kept: Spark's URIs
    root.mkdir()
    pq.write_table(_table(seed=1), root / "part-1.parquet")
    pq.write_table(_table(seed=2), root / "part 0.parquet")
    (root / "_SUCCESS").write_text("")
    (root / ".part-1.parquet.crc").write_bytes(b"\0")
    (root / "part-2.parquet._COPYING_").write_bytes(b"\0")
    opened = open_parquet(spark, str(root))
    _same_as_spark(spark, root, opened)
    assert len(opened.inputFiles()) == 2
    from softmax_spark.core.labels import discover_classes

    assert discover_classes(None, "label", opened.inputFiles()) == [0, 1, 2]  # read here, by pyarrow
    assert opened.count() == 12  # anything else is the DataFrame's, read on first use
    assert opened.select("label").count() == 12


def test_a_single_file_and_a_file_uri(spark, tmp_path):
    pq.write_table(_table(), tmp_path / "one.parquet")
    _same_as_spark(spark, tmp_path / "one.parquet", open_parquet(spark, str(tmp_path / "one.parquet")))
    _same_as_spark(spark, tmp_path / "one.parquet", open_parquet(spark, (tmp_path / "one.parquet").as_uri()))


def test_spark_written_vectors_keep_their_udt(spark, tmp_path):
    from pyspark.ml.linalg import Vectors

    df = spark.createDataFrame([(Vectors.dense([1.0, 2.0]), 0), (Vectors.sparse(2, [1], [3.0]), 1)],
                               ["features", "label"])
    df.coalesce(1).write.parquet(str(tmp_path / "vec"))
    opened = open_parquet(spark, str(tmp_path / "vec"))
    _same_as_spark(spark, tmp_path / "vec", opened)
    assert type(opened.schema["features"].dataType).__name__ == "VectorUDT"


@pytest.mark.parametrize("case", ["hive partitions", "schemas differ", "glob", "unsigned", "not parquet"])
def test_what_the_footers_do_not_settle_is_left_to_spark(spark, tmp_path, case):
    root = tmp_path / "in"
    root.mkdir()
    path = str(root)
    if case == "hive partitions":
        (root / "label=1").mkdir()
        pq.write_table(_table().drop(["label"]), root / "label=1" / "p.parquet")
    elif case == "schemas differ":
        pq.write_table(_table(), root / "a.parquet")
        pq.write_table(_table().drop(["name"]), root / "b.parquet")
    elif case == "glob":
        pq.write_table(_table(), root / "a.parquet")
        path = str(root / "*.parquet")
    elif case == "unsigned":
        pq.write_table(_table(extra={"count": pa.array(np.arange(6, dtype=np.uint32))}), root / "a.parquet")
    else:
        (root / "a.parquet").write_text("not parquet")
    if case == "not parquet":
        with pytest.raises(Exception):
            open_parquet(spark, path).collect()  # Spark's own error, as before
        return
    opened = open_parquet(spark, path)
    assert not isinstance(opened, ParquetFiles)
    assert opened.count() == (12 if case == "schemas differ" else 6)


def test_a_missing_path_is_one_input_error(spark, tmp_path):
    from softmax_spark.core.errors import InputError

    with pytest.raises(InputError, match="does not exist"):
        open_parquet(spark, str(tmp_path / "nowhere"))


def test_warm_workers_runs_one_task_per_core_in_the_background(spark, caplog):
    # checked on the warm job itself (Spark's status tracker), not on which Python worker a later
    # task lands in: in the whole suite, other tests' jobs and worker reuse decide that
    import logging

    from softmax_spark.cli.jobs_common import warm_workers

    tracker, sc = spark.sparkContext.statusTracker(), spark.sparkContext
    assert warm_workers(spark, ()) is None
    before = set(tracker.getJobIdsForGroup())
    with caplog.at_level(logging.DEBUG, logger="softmax_spark"):
        thread = warm_workers(spark, ("softmax_spark.spark.ingest", "softmax_spark.spark.distributed"))
        thread.join(120)
    assert not thread.is_alive()
    assert "warming the Python workers failed" not in caplog.text
    jobs = [tracker.getJobInfo(j) for j in set(tracker.getJobIdsForGroup()) - before]
    tasks = [sum(tracker.getStageInfo(s).numTasks for s in job.stageIds if tracker.getStageInfo(s))
             for job in jobs if job is not None and job.status == "SUCCEEDED"]
    assert sc.defaultParallelism in tasks


def test_jobs_leave_the_stop_to_spark_submits_jvm_only_under_spark_submit(monkeypatch):
    from softmax_spark.cli import jobs_common

    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    assert not jobs_common._jvm_stops_context()
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "12345")
    assert jobs_common._jvm_stops_context()
    assert os.environ["PYSPARK_GATEWAY_PORT"] == "12345"
