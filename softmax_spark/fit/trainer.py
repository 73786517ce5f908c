"""The plain Python API: ``SoftmaxTrainer`` and ``train`` (snake_case options, ``l2`` = λ).

    from softmax_spark import SoftmaxTrainer, train
    model = SoftmaxTrainer(l2=1e-3, optimizer="lbfgs").fit(df)     # a softmax_spark.SoftmaxModel
    model = train(df, l2=1e-3)                                      # the same in one call

Options are ``TrainConfig``'s fields — the flags of ``jobs/train.py`` with ``_`` for ``-`` — and
the objective is J = mean weighted log-loss + l2·‖W‖²_F. The Spark ML Estimator
``softmax_spark.ml.SoftmaxRegression`` (Pipelines, CrossValidator; MLlib's camelCase Params, whose
``regParam`` is 2·l2 for a multinomial model: J = loss + ½·regParam·‖W‖²) is the other API; a
camelCase Param given here is a ``TypeError`` that names it. ``softmax_spark.SoftmaxRegression``
is this class's old name (a ``DeprecationWarning``).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
import warnings

from softmax_spark.fit.config import TrainConfig, param_to_option
from softmax_spark.core.model import SoftmaxModel

__all__ = ["SoftmaxTrainer", "train", "option_names"]

# the job's test hook: not an option of an in-memory fit's signature (still accepted)
_JOB_ONLY = ("fail_first_attempt_dir",)


def option_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig) if f.init and f.name not in _JOB_ONLY]


def _check_options(options: dict, where: str) -> None:
    PARAM_TO_OPTION = param_to_option()  # the declarations' param= (Param → option: regParam → l2)
    names = {f.name for f in dataclasses.fields(TrainConfig) if f.init}
    unknown = sorted(set(options) - names)
    if not unknown:
        return
    params = [name for name in unknown if name in PARAM_TO_OPTION or name in _ESTIMATOR_ONLY]
    if params:
        hints = ", ".join(f"{p} → {PARAM_TO_OPTION[p]}" for p in params if p in PARAM_TO_OPTION)
        scale = " (l2 = λ: l2 = regParam/2 for MLlib's multinomial objective, = regParam for binomial)" \
            if "regParam" in params else ""
        raise TypeError(f"{where} takes snake_case options; {', '.join(params)} {'is a Param' if len(params) == 1 else 'are Params'} "
                        f"of the Spark ML Estimator softmax_spark.ml.SoftmaxRegression. Use that class, or "
                        f"here: {hints or 'see help(softmax_spark.SoftmaxTrainer)'}{scale}")
    raise TypeError(f"{where}: unknown options {unknown}; known: {sorted(names)}")


# Params of the Estimator with no option here (named as Params in the wrong-style error)
_ESTIMATOR_ONLY = {"featuresCol", "labelCol", "predictionCol", "probabilityCol", "rawPredictionCol", "elasticNetParam",
                   "family", "labelIndexing", "threshold", "thresholds", "initialModel", "initModelClasses",
                   "validationIndicatorCol", "predictedLabelCol", "solver"}


class SoftmaxTrainer:
    """Trainer: ``fit(df, validation_df=None) -> SoftmaxModel``; writes nothing unless
    ``model_dir`` is given. Options (keyword-only) are listed below with their defaults."""

    def __init__(self, **options):
        _check_options(options, type(self).__name__)
        self.options = dict(options)

    def config(self, **overrides) -> TrainConfig:
        """The validated ``TrainConfig`` of these options (``InputError`` naming the option)."""
        cfg = TrainConfig(**{**self.options, **overrides})
        if cfg.input is None:
            cfg.input = "<DataFrame>"
        if cfg.model_dir is None:
            cfg.model_dir = "<not written>"
        return cfg.validate()

    def fit(self, df, validation_df=None) -> SoftmaxModel:
        """Train on a Spark DataFrame (``features_col`` / ``feature_cols``, ``label_col``, optional
        ``weight_col``); ``validation_df``: early stopping on its log-loss. Returns a
        ``SoftmaxModel`` (coef (C, D), intercept (C,), classes, history); writes ``model_dir``
        when given. Raises ``InputError`` (one line) for bad options or data."""
        # lazy: building a trainer, its config and help() need no Spark (training imports pyspark)
        from softmax_spark.spark.shipping import our_tasks
        from softmax_spark.fit.training import fit_dataframe

        write = self.options.get("model_dir") is not None
        cfg = self.config()
        with our_tasks(df.sparkSession):  # on a user's session: the package reaches the workers
            return fit_dataframe(df.sparkSession, cfg, df=df, validation_df=validation_df, write=write)


def train(df, validation_df=None, **options) -> SoftmaxModel:
    """``SoftmaxTrainer(**options).fit(df, validation_df)``: see ``help(SoftmaxTrainer)``."""
    _check_options(options, "train")
    return SoftmaxTrainer(**options).fit(df, validation_df)


def _signature_and_doc():
    hints = typing.get_type_hints(TrainConfig)
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    parameters, lines = [], []
    for name in option_names():
        f = fields[name]
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                            annotation=hints[name]))
        choices = f.metadata.get("choices")
        extra = f" One of {', '.join(choices)}." if choices else ""
        lines.append(f"    {name} = {f.default!r}\n        {f.metadata.get('help', '')}.{extra}")
    return parameters, "\n".join(lines)


_PARAMETERS, _OPTIONS_DOC = _signature_and_doc()
SoftmaxTrainer.__init__.__signature__ = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)] + _PARAMETERS)
SoftmaxTrainer.__doc__ += "\n\n    Options (TrainConfig; the job's flags with _ for -):\n\n" + _OPTIONS_DOC + "\n"
train.__signature__ = inspect.Signature(
    [inspect.Parameter("df", inspect.Parameter.POSITIONAL_OR_KEYWORD),
     inspect.Parameter("validation_df", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)] + _PARAMETERS,
    return_annotation=SoftmaxModel)
train.__doc__ += "\n\n    Options:\n\n" + _OPTIONS_DOC + "\n"


class SoftmaxRegression(SoftmaxTrainer):
    """Deprecated name of ``SoftmaxTrainer`` (the plain Python API). For the Spark ML Estimator
    use ``softmax_spark.ml.SoftmaxRegression``."""

    def __init__(self, **options):
        warnings.warn("softmax_spark.SoftmaxRegression is deprecated: use softmax_spark.SoftmaxTrainer (or "
                      "softmax_spark.train) for the plain Python API with snake_case options (l2 = λ), or "
                      "softmax_spark.ml.SoftmaxRegression for the Spark ML Estimator (camelCase Params, regParam)",
                      DeprecationWarning, stacklevel=2)
        super().__init__(**options)


SoftmaxRegression.__init__.__signature__ = SoftmaxTrainer.__init__.__signature__
