"""Issue 16 item 18: an input file replaced between the ingest and a rebuild is reported
(``InputChangedError``, an ``InputError``: the jobs exit 2 with this one line), never read into the
sums. A block file is deleted between two passes to force the rebuild, as in test_cluster.py's
``test_a_deleted_block_file_never_gives_partial_sums``; the replacement holds the same number of
rows in the same layout (so only the recorded size / modification time can tell)."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from helpers import make_data, write_parquet
from softmax_spark.fit.config import TrainConfig
from softmax_spark.spark.distributed import DistributedLoss
from softmax_spark.core.errors import InputError
from softmax_spark.spark.ingest import InputChangedError, read_parquet
from softmax_spark.fit.training import TrainingData


def _replace_file(path, seed):
    """Write other rows (same count, same row groups) to ``path`` through a rename, as a producer
    republishing a file does."""
    X, y = make_data(n=300, d=4, c=3, seed=seed)
    tmp = str(path) + ".new"
    write_parquet(tmp, X * 3.0, y, row_group_size=100)
    os.replace(tmp, path)


@pytest.mark.parametrize("direct, owner", [(True, "training"), (False, "training"), (False, "ingested")],
                         ids=["parquet-slices", "spark-rows", "spark-rows-IngestedData.rebuild"])
def test_an_input_file_replaced_before_a_rebuild_is_reported(spark, tmp_path, direct, owner):
    X, y = make_data(n=300, d=4, c=3, seed=5)
    path = write_parquet(tmp_path / "d.parquet", X, y, row_group_size=100)
    df = read_parquet(spark, str(path))
    files = sorted(df.inputFiles()) if direct else None
    if not direct:
        df = df.repartition(3)
    cfg = TrainConfig(input=str(path), model_dir=str(tmp_path / "m"))
    rng = np.random.default_rng(0)
    coef, intercept = rng.normal(size=(3, 4)), rng.normal(size=3)
    with TrainingData(cfg, [0, 1, 2], 3) as data:
        ingested = data.add("train", df, files)
        assert ingested.source == ("parquet files (pyarrow)" if direct else "spark rows (arrow)")
        if owner == "training":
            loss = DistributedLoss(ingested.blocks, 3, 4, rebuild=data.rebuilder("train"))
        else:
            loss = DistributedLoss(ingested, 3, 4)  # IngestedData.rebuild
        before = loss(coef, intercept)
        # an unchanged input rebuilds as before (same sums)
        victim = sorted(ingested.blocks.collect(), key=lambda d: d.partition)[1]
        os.remove(victim.path + ".X")
        np.testing.assert_allclose(loss(coef, intercept).loss, before.loss, rtol=1e-12)

        _replace_file(path, seed=6)
        victim = sorted(loss.blocks.collect(), key=lambda d: d.partition)[1]
        os.remove(victim.path + ".X")  # local mode: the driver sees the executor's disk
        with pytest.raises(InputChangedError) as caught:
            loss(coef, intercept)
    message = str(caught.value)
    assert isinstance(caught.value, InputError) and "\n" not in message
    # the same size here (same rows, same layout): the modification time tells
    assert re.match(r"input file (file:)?/\S*/d\.parquet changed \(size (\d+) → \2 bytes, modified ", message), message
    assert "since the ingest" in message and "keep the input unchanged while training runs" in message


def test_a_deleted_input_file_is_reported(spark, tmp_path):
    X, y = make_data(n=300, d=4, c=3, seed=5)
    path = write_parquet(tmp_path / "d.parquet", X, y, row_group_size=100)
    df = read_parquet(spark, str(path))
    cfg = TrainConfig(input=str(path), model_dir=str(tmp_path / "m"))
    with TrainingData(cfg, [0, 1, 2], 3) as data:
        ingested = data.add("train", df, sorted(df.inputFiles()))
        loss = DistributedLoss(ingested.blocks, 3, 4, rebuild=data.rebuilder("train"))
        os.remove(path)
        os.remove(sorted(ingested.blocks.collect(), key=lambda d: d.partition)[0].path + ".X")
        with pytest.raises(InputChangedError, match=r"input file \S+d\.parquet was deleted since the ingest"):
            loss(np.zeros((3, 4)), np.zeros(3))
