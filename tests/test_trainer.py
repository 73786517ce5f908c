"""The in-memory trainer's options (``fit.trainer``): checked before any Spark work."""

import pytest

from softmax_spark.fit.trainer import SoftmaxTrainer, option_names


def test_options_are_the_configs_and_params_are_refused_with_a_hint():
    assert "l2" in option_names() and "fail_first_attempt_dir" not in option_names()
    assert SoftmaxTrainer(l2=0.5, max_iter=3).config(input="x").l2 == 0.5
    with pytest.raises(TypeError, match=r"regParam is a Param .*regParam → l2"):
        SoftmaxTrainer(regParam=0.1)
    with pytest.raises(TypeError, match=r"unknown options \['nope'\]"):
        SoftmaxTrainer(nope=1)
