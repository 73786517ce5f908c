"""The resume fingerprint of a run is that of the version that wrote its checkpoints: options added
later enter it only when set (``config.RESUME_IF_SET``), so upgrading does not silently restart a
half-done training. The expected values were computed by the landed version 5c32a57."""

import types

import numpy as np
import pytest

from softmax_spark.fit.config import RESUME_ALWAYS, RESUME_IF_SET, RESUME_IGNORE, TrainConfig
from softmax_spark.fit.training import fingerprint_options

SUMMARY = types.SimpleNamespace(to_dict=lambda: {"rows": 10, "classes": [0, 1, 2]},
                                col_mean=np.arange(3.0), col_var=np.ones(3))


@pytest.mark.parametrize("options,expected", [
    ({}, "e16d24f9d704c43f"),
    ({"l2": 0.01, "optimizer": "lbfgs"}, "7f890cf6cbcc6b85"),
    ({"standardize": True, "max_iter": 5}, "ad80c9ac06eda620"),
])
def test_fingerprints_of_5c32a57_runs_are_unchanged(options, expected):
    cfg = TrainConfig(input="data/train.parquet", model_dir="out/m", **options)
    assert fingerprint_options(cfg, SUMMARY) == expected


def test_every_option_declares_how_it_enters_the_fingerprint():
    import dataclasses

    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("resume", RESUME_ALWAYS) in (RESUME_ALWAYS, RESUME_IGNORE, RESUME_IF_SET), f.name


def test_a_new_option_counts_once_set_and_paths_never():
    base = TrainConfig(input="data/train.parquet", model_dir="out/m")
    assert fingerprint_options(TrainConfig(input="data/train.parquet", model_dir="elsewhere", max_iter=3,
                                            checkpoint_every=2), SUMMARY) == fingerprint_options(base, SUMMARY)
    assert fingerprint_options(TrainConfig(input="data/train.parquet", model_dir="out/m", cv_folds=5),
                                SUMMARY) != fingerprint_options(base, SUMMARY)
