"""softmax_spark.sparkml.params: the Estimator's Params come from the option declarations of
``softmax_spark.fit.config`` — one declaration per option (issue #25). No SparkSession needed."""

import dataclasses
import typing

import pytest

from softmax_spark.fit import config
from softmax_spark.fit.config import PARAM_MLLIB, PARAM_OURS, TrainConfig


def _declared():
    return config.option_params()


def test_every_declared_param_is_a_param_of_the_estimator_with_the_declared_default_and_doc():
    from softmax_spark.ml import SoftmaxRegression, SoftmaxRegressionModel

    for cls in (SoftmaxRegression, SoftmaxRegressionModel):
        inst = cls()
        for name, f in _declared().items():
            param = inst.getParam(f.metadata["param"])
            if f.metadata["param_kind"] == PARAM_OURS:
                assert param.doc == f.metadata["param_doc"], name
            if f.metadata["param_default"] == "option":
                if f.default is None:
                    assert not inst.hasDefault(param), name
                else:
                    assert inst.getOrDefault(param) == f.default, name
            setter = "set" + param.name[0].upper() + param.name[1:]
            assert callable(getattr(inst, setter)), (name, setter)


def test_mllib_params_keep_mllibs_defaults():
    """maxIter 100, regParam 0, tol 1e-6, standardization True: MLlib's, not the job's."""
    from softmax_spark.ml import SoftmaxRegression

    est = SoftmaxRegression()
    assert (est.getMaxIter(), est.getRegParam(), est.getTol(), est.getStandardization()) == (100, 0.0, 1e-6, True)
    # MLlib Params declared with the option's default
    assert (est.getSolver(), est.getSeed(), est.getCheckpointInterval()) == ("auto", 0, 10)
    assert {f.metadata["param"] for f in _declared().values() if f.metadata["param_kind"] == PARAM_MLLIB} >= {
        "maxIter", "regParam", "tol", "featuresCol", "labelCol", "weightCol", "solver"}


def _other_value(name, value, annotation):
    """A valid value of option ``name`` different from ``value``."""
    special = {"schedule": "step", "class_weight": "balanced", "init_model_classes": ["a", "b"],
               "checkpoint_dir": "/tmp/ckpt-x", "learning_rate": 0.25, "num_partitions": 3,
               "validation_fraction": 0.2, "momentum": 0.5, "batch_fraction": 0.5}
    if name in special:
        return special[name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 3
    if isinstance(value, float):
        return value * 2 + 0.125
    raise AssertionError(f"no test value for {name} ({annotation})")


def test_every_generated_param_reaches_the_train_config():
    """Set each of our Params to a non-default value: ``_train_config`` passes it to the option it
    was declared with (the mapping is derived, not written by hand)."""
    from softmax_spark.ml import SoftmaxRegression

    hints = typing.get_type_hints(TrainConfig)
    ours = {n: f for n, f in _declared().items() if f.metadata["param_kind"] == PARAM_OURS}
    assert {"lbfgs_memory", "gtol", "power_t", "batch_fraction", "resident_tasks"} <= set(ours)
    for name, f in ours.items():
        if name in ("init_model", "init_model_classes"):  # the Estimator's warm start writes its own directory
            continue
        value = _other_value(name, f.default, hints[name])
        est = SoftmaxRegression(**{f.metadata["param"]: value})
        cfg = est._train_config([0, 1], 0.5, None)
        assert getattr(cfg, name) == value, name


def test_train_config_equals_the_hand_mapping_it_replaced():
    """Default Params → the TrainConfig the hand-written ``_train_config`` of 3669e62 built."""
    from softmax_spark.ml import SoftmaxRegression

    est = SoftmaxRegression(regParam=0.2, weightCol="w", checkpointInterval=-1, maxIter=7)
    cfg = est._train_config(["a", "b", "c"], 0.1, "/init", l1=0.0)
    expected = TrainConfig(
        input="<DataFrame>", model_dir="<not written>", features_col="features", label_col="label",
        weight_col="w", classes=["a", "b", "c"], aggregation_depth=2, optimizer="auto", l2=0.1,
        fit_intercept=True, standardize=True, class_weight=None, init_model="/init", seed=0, max_iter=7,
        tol=1e-6, gtol=1e-9, lbfgs_memory=10, batch_fraction=1.0, learning_rate=None, schedule="constant",
        power_t=0.5, decay_rate=0.5, decay_every=100, momentum=0.0, nesterov=False, average=True,
        n_iter_no_change=5, validation_fraction=0.0, patience=10, checkpoint_dir=None, checkpoint_every=1,
        num_partitions=None, write_mllib=False, resident_tasks=True, l1=0.0, mllib_tol=1e-6,
    ).validate()
    assert dataclasses.asdict(cfg) == dataclasses.asdict(expected)


def test_flag_to_param_is_derived_from_the_declarations():
    from softmax_spark.sparkml.diagnostics import FLAG_TO_PARAM, to_params

    assert FLAG_TO_PARAM["lbfgs_memory"] == "lbfgsMemory" and FLAG_TO_PARAM["l2"] == "regParam"
    assert FLAG_TO_PARAM == {n: f.metadata["param"] for n, f in _declared().items()}
    assert to_params("--lbfgs-memory must be ≥ 1, got 0") == "lbfgsMemory must be ≥ 1, got 0"


def test_solver_options_come_from_the_declarations():
    from softmax_spark.sparkml.mlflow_support import LBFGS_PARAMS, SGD_PARAMS

    assert set(LBFGS_PARAMS) == {"lbfgsMemory", "gtol"}
    assert set(SGD_PARAMS) == {"batchFraction", "learningRate", "schedule", "powerT", "decayRate", "decayEvery",
                               "momentum", "nesterov", "average", "nIterNoChange"}
    assert config.solver_options("owlqn") == ["kkt_tol", "lbfgs_memory"]


def test_cv_shares_the_single_fits_params():
    from softmax_spark.ml import SoftmaxRegression, SoftmaxRegressionCV
    from softmax_spark.sparkml.tuning import _SHARED

    est, cv = SoftmaxRegression(), SoftmaxRegressionCV()
    for name in _SHARED:
        assert cv.getParam(name).doc == est.getParam(name).doc, name
    assert not cv.hasDefault(cv.tol) and cv.getOrDefault(cv.residentTasks) is True


def test_at_least_is_checked_from_the_declaration():
    with pytest.raises(config.InputError, match=r"^--lbfgs-memory must be ≥ 1, got 0$"):
        TrainConfig(input="x", model_dir="y", lbfgs_memory=0).validate()
    with pytest.raises(config.InputError, match=r"^--cv-folds must be ≥ 2, got 1$"):
        TrainConfig(input="x", model_dir="y", cv_folds=1).validate()
    TrainConfig(input="x", model_dir="y", num_partitions=None, tol=None).validate()  # None allowed
