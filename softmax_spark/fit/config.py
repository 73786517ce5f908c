"""Job configuration: one dataclass per job; flags and YAML keys are the same names.

``parse_config(TrainConfig, argv)`` reads ``--config FILE`` (YAML mapping; each key is its flag
without ``--`` and with ``_`` for ``-``: ``--batch-fraction`` → ``batch_fraction``, for every
job), then applies the flags given on the command line on top. A YAML ``null`` means "not given"
(the field's default). ``InputError`` (one line) for: an unknown key or flag (with a "did you
mean" suggestion when one is close), an abbreviated flag (``--max-it`` is not ``--max-iter``:
abbreviations are refused, so adding a flag can never change what an old command means), a
value of the wrong type, an invalid or missing YAML file. A key spelt with ``-`` (the old
``conf/evaluate.yaml`` spelling) is still read, with a deprecation warning naming the new key.

Field metadata: ``help``; ``choices`` (str fields); ``negatable=False`` (bool fields: only the
``--flag`` form, no ``--no-flag``); ``excludes`` (names of fields that a flag setting this one
clears when they came from the config file); ``resume`` (how it enters the resume fingerprint);
``param`` & co. (the Spark ML Estimator's Param for it); ``solvers`` (the optimizers that read
it). Fields with ``init=False`` are derived by ``validate()``, not options.

One declaration per option: ``_opt`` is the only place an option is written; the CLI flags, YAML
keys, docs tables, resume fingerprint, Estimator Params (``softmax_spark.sparkml.params``), the
Estimator's ``TrainConfig`` and the flag → Param rewording of messages are derived from it.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field

from softmax_spark.core.errors import InputError
# the parser lives in fit.parsing; its public functions (and the helpers other modules read) are this
# module's names too
from softmax_spark.fit.parsing import (_describe, _flag, _members, _option_fields, _shown,  # noqa: F401
                                       build_parser, config_from_dict, load_yaml, parse_config, suggest)

__all__ = ["TrainConfig", "EvaluateConfig", "parse_config", "config_from_dict", "build_parser", "load_yaml",
           "option_params", "param_to_option", "solver_options"]


def _check_finite(cfg) -> None:
    """Every float option is a finite number (``inf`` or ``nan`` would pass a ``≥ 0`` check and
    poison the solver): ``InputError`` naming the flag otherwise."""
    for f in _option_fields(type(cfg)):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{_flag(f.name)} must be a finite number, got {value}")


def _check_at_least(cfg) -> None:
    """Every option declared with ``at_least=k`` is ≥ k (or None, when None is allowed): an
    ``InputError`` naming the flag otherwise, in declaration order."""
    for f in _option_fields(type(cfg)):
        bound = f.metadata.get("at_least")
        value = getattr(cfg, f.name)
        if bound is not None and value is not None and not value >= bound:
            raise InputError(f"{_flag(f.name)} must be ≥ {bound}, got {value}")


# How an option enters the resume fingerprint (``training.fingerprint_options``): a checkpoint
# resumes only a run whose fingerprinted options equal its own.
RESUME_ALWAYS = "always"    # changes the model: hashed with its value
RESUME_IGNORE = "ignore"    # where or how long to run, not what is computed (paths, max_iter, …)
RESUME_IF_SET = "if_set"    # added after checkpoints existed: hashed only when not its default, so
                            # a checkpoint written before the option existed still resumes


# The Spark ML Estimator's view of an option (``param=`` in ``_opt``; ``softmax_spark.sparkml.params``
# builds the Estimator's Params, its defaults, ``_train_config`` and the Params↔flags table from it)
PARAM_OURS = "ours"      # a Param of ours: declared from the option (type, default, doc = help or param_doc)
PARAM_MLLIB = "mllib"    # one of MLlib's LogisticRegression Params (pyspark's Has* mixin): MLlib's doc and
                         # default, unless ``param_default="option"`` (the option's default instead)


def _opt(default, help, resume: str = RESUME_ALWAYS, *, param: str | None = None, param_doc: str | None = None,
         param_kind: str = PARAM_OURS, param_default: str | None = None, solvers: tuple | None = None, **kw):
    """One option's declaration — the single place an option is written. From it come the flag and
    YAML key (``build_parser``, ``config_from_dict``), the docs' tables (``tools/docs_hooks.py``), the
    resume fingerprint (``training.fingerprint_options``) and the Spark ML Param
    (``sparkml.params``).

    ``help``: the flag's and the docs' text. ``resume``: how it enters the resume fingerprint
    (``RESUME_*``); new options that change the model are declared with ``resume=RESUME_IF_SET``
    (a test keeps the fingerprints of older versions' runs fixed). ``param``: the Estimator's Param
    name (camelCase), None for an option the Estimator does not expose; ``param_doc``: the Param's
    doc when it is not ``help``; ``param_kind``: ``PARAM_OURS`` (generated) or ``PARAM_MLLIB``
    (MLlib's own Param, its name, doc and default kept); ``param_default``: "option" to give an
    MLlib Param this option's default. ``solvers``: the ``--optimizer`` values that read the option
    (None: not solver-specific; MLflow autolog logs a solver's options only when it runs).
    ``at_least``: the smallest valid value (``validate`` refuses a smaller one, naming the flag)."""
    meta = {"help": help, "resume": resume, **kw}
    if param is not None:
        meta.update(param=param, param_doc=param_doc or help, param_kind=param_kind,
                    param_default=param_default or ("option" if param_kind == PARAM_OURS else "mllib"))
    if solvers is not None:
        meta["solvers"] = tuple(solvers)
    return field(default=default, metadata=meta)


class _FeatureSource:
    """The ``features_col`` / ``feature_cols`` pair of a job's config as a ``FeatureSpec``."""

    @property
    def feature_spec(self):
        # lazy: the options load before the SparkContext starts (no numpy / pyarrow at a job's start-up)
        from softmax_spark.core.features import FeatureSpec

        if self.feature_cols:
            return FeatureSpec(features_col=None, feature_cols=tuple(self.feature_cols))
        return FeatureSpec(features_col=self.features_col or "features")


@dataclass
class TrainConfig(_FeatureSource):
    """Every option of ``jobs/train.py`` (flag ``--name-with-dashes``, YAML key ``name_with_underscores``)."""

    input: str | None = _opt(None, "training data: any Parquet path Spark reads (dir, file, glob, URI)")
    model_dir: str | None = _opt(None, "where the model directory is written, atomically (local path or URI: hdfs://, s3a://, viewfs://, …)", resume=RESUME_IGNORE)
    overwrite: bool = _opt(False, "replace an existing model directory", resume=RESUME_IGNORE)
    features_col: str | None = _opt("features", "feature column: an ml Vector (any mix of dense and sparse rows), array<double> or array<float>", param="featuresCol", param_kind=PARAM_MLLIB)
    feature_cols: list | None = _opt(None, "comma-separated numeric feature columns (instead of --features-col)")
    label_col: str = _opt("label", "label column: any orderable type (int, string, …)", param="labelCol", param_kind=PARAM_MLLIB)
    weight_col: str | None = _opt(None, "optional sample-weight column (≥ 0)", param="weightCol", param_kind=PARAM_MLLIB)
    classes: list | None = _opt(None, "comma-separated class labels (default: sorted distinct labels)")
    dtype: str = _opt("auto", "storage dtype of the cached features: auto (float32 for array<float> or float "
                      "feature columns, else float64), float64 or float32 (sums are float64)",
                      choices=("auto", "float64", "float32"))
    num_partitions: int | None = _opt(None, "coalesce the input to at most this many partitions (default: Spark's default parallelism)", param="numPartitions", param_doc="coalesce the input to at most this many partitions (unset: Spark's default parallelism)", at_least=1)
    aggregation_depth: int = _opt(2, "treeAggregate depth (≥ 1)", param="aggregationDepth", param_kind=PARAM_MLLIB, at_least=1)
    resident_tasks: bool = _opt(True, "under a local master, keep one task per core "
                                "running for the whole fit and send it every pass (the same sums; see "
                                "softmax_spark/spark/resident.py); --no-resident-tasks runs each pass as a Spark job", param="residentTasks", param_doc="under a local master, one task per core stays for the whole fit and runs every pass (the same sums); false: a Spark job per pass")
    optimizer: str = _opt("auto", "auto (newton when C·D̃ ≤ 4096 and a Hessian pass is affordable, qn-newton-cg when "
                          "C·D̃ > 4096, else lbfgs; with --l1 or bounds: prox-newton or qn-newton-cg; see solvers/auto.py), "
                          "newton (exact Hessian), newton-cg (Hessian-vector products), lbfgs (full batch), sgd (minibatch; "
                          "--batch-fraction 1 = gradient descent), prox-newton (L1/bounds: exact Hessian + coordinate "
                          "descent), owlqn (L1/bounds: orthant-wise L-BFGS) or qn-newton-cg (L-BFGS / OWL-QN, then an "
                          "orthant-wise Newton-CG finish: exact above the Newton bound)",
                          choices=("auto", "newton", "newton-cg", "lbfgs", "sgd", "prox-newton", "owlqn", "qn-newton-cg"), param="solver", param_kind=PARAM_MLLIB, param_default="option")
    l2: float = _opt(1e-4, "λ in J = mean weighted log-loss + λ‖W‖²_F (λ ≥ 0; intercept not penalised)", param="regParam", param_kind=PARAM_MLLIB, at_least=0)
    l1: float = _opt(0.0, "λ₁ in J = mean weighted log-loss + λ₁ Σ ω_j|w_cj| + λ₂‖W‖² (λ₁ ≥ 0; ω_j = 1, or σ_j "
                     "with --standardize; intercept not penalised; see docs/elastic-net-and-bounds.md)", resume=RESUME_IF_SET)
    lower_bounds: typing.Any = _opt(None, "lower bound on every coefficient w_cj: a number, or in the config file a "
                                    "C × D nested list (rows in class order)", resume=RESUME_IF_SET)
    upper_bounds: typing.Any = _opt(None, "upper bound on every coefficient w_cj: a number, or a C × D nested list", resume=RESUME_IF_SET)
    lower_bounds_intercept: typing.Any = _opt(None, "lower bound on every intercept b_c: a number or a list of C "
                                              "(the map then does not centre the columns)", resume=RESUME_IF_SET)
    upper_bounds_intercept: typing.Any = _opt(None, "upper bound on every intercept b_c: a number or a list of C", resume=RESUME_IF_SET)
    mllib_tol: float | None = _opt(None, "MLlib's tol as the Spark ML Estimator passes it: each solver maps it to its "
                                   "own rule (newton: decrement ≤ 1e-4·tol², prox-newton: KKT ≤ 1e-4·tol; see "
                                   "softmax_spark/sparkml/classification.py); overrides --tol / --kkt-tol for those solvers", resume=RESUME_IF_SET)
    kkt_tol: float | None = _opt(None, "prox-newton / owlqn / qn-newton-cg: stop when the KKT residual (model "
                                 "coordinates) ≤ kkt_tol (default: prox-newton 1e-10, owlqn and qn-newton-cg 1e-9)",
                                 resume=RESUME_IF_SET, solvers=("prox-newton", "owlqn", "qn-newton-cg"))
    fit_intercept: bool = _opt(True, "fit the intercept b", param="fitIntercept", param_kind=PARAM_MLLIB)
    standardize: bool = _opt(False, "penalise standardised coefficients, λ Σ (σ_j w_cj)² (MLlib standardization=True)", param="standardization", param_kind=PARAM_MLLIB)
    parametrization: str = _opt("full", "full (C rows) or reference (C−1 free rows, last row pinned to 0; the penalty is on the centred rows, so both give the same probabilities)",
                                choices=("full", "reference"))
    precondition: bool = _opt(True, "optimise in centred and scaled coordinates (same objective)")
    class_weight: typing.Any = _opt(None, "'balanced' (Σs / (C·Σ_c s): per-class sums of the sample weights) or, in the config file, a map label → weight", param="classWeight", param_doc="'balanced' (n / (C·n_c)) or a dict label → weight; multiplies the sample weights")
    init_model: str | None = _opt(None, "warm start from a softmax_spark model dir or a Spark MLlib LogisticRegressionModel dir", param="initialModel", param_doc="warm start: a saved SoftmaxRegressionModel, softmax_spark model or MLlib LogisticRegressionModel directory")
    init_model_classes: list | None = _opt(None, "an MLlib --init-model's class labels in its label-index order 0, 1, …, comma-separated (MLlib models carry no label names)", param="initModelClasses", param_doc="an MLlib initialModel's class labels in its label-index order 0, 1, …, K−1 (MLlib models carry no label names; unset: the identity when the training classes are MLlib's 0..K−1)")
    seed: int = _opt(0, "seed of the minibatch sampling and the validation split", param="seed", param_kind=PARAM_MLLIB, param_default="option")
    max_iter: int = _opt(1000, "maximum iterations (≥ 1)", resume=RESUME_IGNORE, param="maxIter", param_kind=PARAM_MLLIB, at_least=1)
    tol: float | None = _opt(None, "stopping tolerance; default by solver — newton: 1e-16, newton-cg: 1e-14 on the Newton decrement ½gᵀH⁻¹g / max(|J|, 1); lbfgs: 1e-9, stop when the decrease over the last 5 iterations and the predicted remaining decrease ½gᵀH⁻¹g, both divided by max(|J_past|, |J|, 1), are ≤ tol; sgd: when the full-data J (one extra pass every ⌈1/batch-fraction⌉ iterations, at the averaged parameters; never a minibatch J) has not dropped below best − tol·max(|best|,1) for --n-iter-no-change checks; 0 disables", param="tol", param_kind=PARAM_MLLIB, at_least=0)
    gtol: float = _opt(1e-9, "lbfgs also stops when the largest gradient component (in the optimizer's coordinates) ≤ gtol", param="gtol", param_doc="lbfgs also stops when the largest gradient component is ≤ gtol", solvers=("lbfgs",), at_least=0)
    lbfgs_memory: int = _opt(10, "L-BFGS history size", param="lbfgsMemory", solvers=("lbfgs", "owlqn", "qn-newton-cg"), at_least=1)
    batch_fraction: float = _opt(1.0, "sgd: fraction of rows per step, in (0, 1]", param="batchFraction", solvers=("sgd",))
    learning_rate: float | None = _opt(None, "sgd: step size η (default: 1/L, L Böhning's curvature bound: from the covariance when D ≤ 512, else by power iteration)", param="learningRate", param_doc="sgd: step size η (unset: 1/L, L the curvature bound computed at ingest)", solvers=("sgd",))
    schedule: str = _opt("constant", "sgd: constant, invscaling (η/(t+1)^power_t) or step (η·decay_rate^⌊t/decay_every⌋)",
                         choices=("constant", "invscaling", "step"), param="schedule", param_doc="sgd learning-rate schedule: constant, invscaling or step", solvers=("sgd",))
    power_t: float = _opt(0.5, "sgd: invscaling exponent", param="powerT", solvers=("sgd",))
    decay_rate: float = _opt(0.5, "sgd: step-schedule factor", param="decayRate", solvers=("sgd",))
    decay_every: int = _opt(100, "sgd: step-schedule period (iterations)", param="decayEvery", solvers=("sgd",), at_least=1)
    momentum: float = _opt(0.0, "sgd: momentum in [0, 1)", param="momentum", solvers=("sgd",))
    nesterov: bool = _opt(False, "sgd: Nesterov momentum", param="nesterov", solvers=("sgd",))
    average: bool = _opt(True, "sgd with --batch-fraction < 1: return the polynomial-decay average of the iterates (weights ∝ t^8, Shamir & Zhang 2013), which averages out minibatch noise; --no-average returns the last iterate", param="average", param_doc="sgd: return the Polyak–Ruppert average of the iterates", solvers=("sgd",))
    n_iter_no_change: int = _opt(5, "sgd: full-data checks (every ⌈1/batch-fraction⌉ iterations; every iteration at batch fraction 1) without improvement by tol before stopping", param="nIterNoChange", param_doc="sgd: iterations without improvement (by tol) before stopping", solvers=("sgd",), at_least=1)
    validation_input: str | None = _opt(None, "validation Parquet for early stopping on validation log-loss")
    validation_fraction: float = _opt(0.0, "hold out this fraction of the training rows for validation instead", param="validationFraction", param_doc="hold out this fraction of the rows for early stopping on validation log-loss")
    patience: int = _opt(10, "early stopping: iterations without a better validation loss before stopping", resume=RESUME_IGNORE, param="patience", at_least=1)
    checkpoint_dir: str | None = _opt(None, "checkpoint directory (local path or URI); rerunning the same command resumes from it", resume=RESUME_IGNORE, param="checkpointDir", param_doc="checkpoint directory; fitting again with the same data and Params resumes from it")
    checkpoint_every: int = _opt(10, "checkpoint every K iterations", resume=RESUME_IGNORE, param="checkpointInterval", param_kind=PARAM_MLLIB, param_default="option", at_least=1)
    write_mllib: bool = _opt(True, "also write <model-dir>/mllib in Spark MLlib's LogisticRegressionModel layout", resume=RESUME_IGNORE)
    inference: bool = _opt(False, "also write coefficient inference (std errors, z, p-values, Wald intervals; see docs/summary-and-inference.md) to <model-dir>/inference.parquet and inference.txt: one extra data pass, C·D̃ ≤ 4096", resume=RESUME_IGNORE)
    # K-fold cross-validation along an L2 path (softmax_spark.cli.cv_job; docs/model-selection.md)
    cv_folds: int | None = _opt(None, "choose --l2 by K-fold cross-validation (K ≥ 2) along a warm-started path: one ingest, every pass computing all K folds; writes the refit model with the path table (cv_path.csv/.parquet/.txt) and cv_curve.png", resume=RESUME_IF_SET, at_least=2)
    l2_path: list[float] | None = _opt(None, "with --cv-folds: comma-separated λ values (--l2 units); default --cv-num-l2 values from a documented start (glmnet's λ_max for α = 0) down by --cv-l2-ratio", resume=RESUME_IF_SET)
    cv_num_l2: int = _opt(20, "with --cv-folds and no --l2-path: number of λ values", resume=RESUME_IF_SET, at_least=1)
    cv_l2_ratio: float = _opt(1e-4, "with --cv-folds and no --l2-path: smallest / largest λ", resume=RESUME_IF_SET)
    cv_fold_col: str | None = _opt(None, "with --cv-folds: integer column in [0, K) giving each row's fold (default: a hash of the row seeded by --seed)", resume=RESUME_IF_SET)
    cv_metric: str = _opt("logLoss", "with --cv-folds: validation metric, logLoss, accuracy or f1 (as MLlib's MulticlassClassificationEvaluator)", resume=RESUME_IF_SET)
    cv_one_standard_error: bool = _opt(False, "with --cv-folds: choose the largest λ within one standard error of the best mean metric (glmnet's lambda.1se)", resume=RESUME_IF_SET)
    cv_elastic_net: list[float] | None = _opt(None, "with --cv-folds: comma-separated α values (MLlib's elasticNetParam, in [0, 1]); each α its own path, the penalty at (λ, α) being λ₁ = 2αλ, λ₂ = (1−α)λ (MLlib's regParam = 2λ); default 0 (pure L2). For α > 0 the default path starts at glmnet's λ_max, where every coefficient is zero", resume=RESUME_IF_SET)

    def validate(self) -> "TrainConfig":
        if not self.input:
            raise InputError("--input is required")
        if not self.model_dir:
            raise InputError("--model-dir is required")
        _check_finite(self)
        _check_at_least(self)
        checks = [
            (0 < self.batch_fraction <= 1, f"--batch-fraction must be in (0, 1], got {self.batch_fraction}"),
            (self.learning_rate is None or self.learning_rate > 0, f"--learning-rate must be > 0, got {self.learning_rate}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
            (0 <= self.validation_fraction < 1, f"--validation-fraction must be in [0, 1), got {self.validation_fraction}"),
            (not (self.validation_input and self.validation_fraction), "give --validation-input or --validation-fraction, not both"),
            (0 < self.cv_l2_ratio <= 1, f"--cv-l2-ratio must be in (0, 1], got {self.cv_l2_ratio}"),
            (not self.cv_elastic_net or all(0 <= v <= 1 for v in self.cv_elastic_net), f"--cv-elastic-net values must be in [0, 1], got {self.cv_elastic_net}"),
            (self.cv_metric in ("logLoss", "accuracy", "f1"), f"--cv-metric must be logLoss, accuracy or f1, got {self.cv_metric!r}"),
            (not self.l2_path or all(v >= 0 for v in self.l2_path), f"--l2-path values must be ≥ 0, got {self.l2_path}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        self._validate_l1_bounds()
        if self.feature_cols and self.features_col not in (None, "features"):
            raise InputError("give --features-col or --feature-cols, not both")
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise InputError(f"class_weight must be 'balanced' or a map label → weight, got {_shown(cw)}")
        if isinstance(cw, dict) and any(not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)
                                        or v < 0 for v in cw.values()):
            raise InputError(f"class_weight map values must be finite numbers ≥ 0, got {_shown(cw)}")
        return self


    def _validate_l1_bounds(self) -> None:
        """--l1 and the bounds: numbers (a flag's text is parsed), lists in the config file."""
        if not (isinstance(self.l1, (int, float)) and self.l1 >= 0):
            raise InputError(f"--l1 must be ≥ 0, got {self.l1}")
        for name in ("lower_bounds", "upper_bounds", "lower_bounds_intercept", "upper_bounds_intercept"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise InputError(f"--{name.replace('_', '-')}: expected a number, got {value!r}") from None
                setattr(self, name, value)
            try:
                import numpy as np

                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise InputError(f"{name}: expected a number or a (nested) list of numbers, got {value!r}") from None
            if np.isnan(arr).any():
                raise InputError(f"{name}: NaN is not a bound")
            if name.endswith("intercept") and not self.fit_intercept:
                raise InputError(f"{name} given with --no-fit-intercept: there is no intercept to bound "
                                 "(MLlib: bounds on intercepts need fitIntercept)")
        if (self.l1 > 0 or self.has_bounds) and self.optimizer in ("newton-cg", "sgd"):
            raise InputError(f"--optimizer {self.optimizer} does not handle --l1 or bounds; use auto, prox-newton, "
                             "owlqn or qn-newton-cg")
        if self.l1 > 0 and self.parametrization == "reference":
            raise InputError("--l1 needs --parametrization full (the L1 penalty is not shift invariant)")
        if self.kkt_tol is not None and not self.kkt_tol >= 0:
            raise InputError(f"--kkt-tol must be ≥ 0, got {self.kkt_tol}")

    @property
    def has_bounds(self) -> bool:
        return any(getattr(self, n) is not None for n in ("lower_bounds", "upper_bounds", "lower_bounds_intercept",
                                                          "upper_bounds_intercept"))

    @property
    def nonsmooth(self) -> bool:
        """An L1 part or a bound: the proximal solvers' problem."""
        return self.l1 > 0 or self.has_bounds


UNKNOWN_LABEL_MODES = ("error", "ignore")


@dataclass
class EvaluateConfig(_FeatureSource):
    """Every option of ``jobs/evaluate.py`` (flag ``--name-with-dashes``, YAML key ``name_with_underscores``).

    ``features_col`` / ``feature_cols`` / ``label_col`` left unset are taken from the model's
    training options by ``inherit_from_model`` (``jobs/evaluate.py`` calls it)."""

    model_dir: str | None = _opt(None, "model directory (required): written by the trainer, a saved "
                                 "softmax_spark.ml.SoftmaxRegressionModel, or a Spark MLlib LogisticRegressionModel")
    model_classes: list | None = _opt(None, "an MLlib --model-dir's class labels in its label-index order 0, 1, …, "
                                      "comma-separated (default 0.0, 1.0, …: MLlib models carry no label names)")
    input: str | None = _opt(None, "input Parquet path (required)")
    output: str | None = _opt(None, "output Parquet path (required)")
    metrics_out: str | None = _opt(None, "metrics JSON path (default <output>.metrics.json)")
    plots_dir: str | None = _opt(None, "directory of PNG plots (default <output>.plots)")
    features_col: str | None = _opt(None, "array/vector feature column (default features)",
                                    excludes=("feature_cols",))
    feature_cols: tuple[str, ...] | None = _opt(None, "comma-separated numeric feature columns, instead of --features-col",
                                                excludes=("features_col",))
    # None: "label", used for metrics when the input has it; given explicitly, it must be there
    label_col: str | None = _opt(None, "label column (default label); metrics only when present")
    partition_by: tuple[str, ...] | None = _opt(None, "comma-separated output columns to partition the output by")
    top_k: int | tuple[int, ...] | None = _opt(
        None, "top-k accuracy: K for k = 1..min(K, classes), or a list like 1,3,10 (default 5)")
    unknown_labels: str = _opt("error", "a label the model does not know: error (default) or ignore (scored, "
                               "counted apart from the metrics)", choices=UNKNOWN_LABEL_MODES)
    prediction_col: str = _opt("prediction", "name of the predicted-label column (default prediction)")
    probability_col: str = _opt("probability", "name of the probability-array column (default probability)")
    overwrite: bool = _opt(False, "replace existing outputs")
    no_plots: bool = _opt(False, "write no plots", negatable=False)
    # set by validate(): top_k came from one integer K → (1, …, K), capped at the number of classes
    top_k_is_range: bool = field(default=False, init=False, repr=False)
    # set by inherit_from_model(): label_col is the model's, not given (an input without it is
    # scored and the missing labels are reported, not an error)
    label_col_from_model: bool = field(default=False, init=False, repr=False)

    @property
    def label_col_required(self) -> bool:
        """The label column was given explicitly: an input without it is an error."""
        return self.label_col is not None and not self.label_col_from_model

    def inherit_from_model(self, metadata: dict) -> list[str]:
        """Fill what was not given from what the model records about its training data
        (``model_record.model_columns``: the metadata's ``"columns"`` section, or for an older
        model its training ``options``; a plain options mapping is read as such): the feature
        columns (``feature_cols``, else ``features``) when neither ``features_col`` nor
        ``feature_cols`` is set, and ``label_col`` when unset. Returns one phrase per setting taken
        (for the log)."""
        from softmax_spark.core.model_record import model_columns, model_feature_spec  # lazy: see feature_spec

        taken = []
        spec = model_feature_spec(metadata)
        if self.features_col is None and self.feature_cols is None and spec is not None:
            self.features_col, self.feature_cols = spec.features_col, spec.feature_cols
            taken.append(f"{'feature_cols' if spec.feature_cols else 'features_col'} {spec.describe()}")
        label = model_columns(metadata)["label"]
        if self.label_col is None and label:
            self.label_col, self.label_col_from_model = str(label), True
            taken.append(f"label_col {self.label_col}")
        return taken

    def validate(self) -> "EvaluateConfig":
        """Check the settings; ``top_k`` becomes the sorted tuple of k values."""
        missing = [_flag(n) for n in ("model_dir", "input", "output") if getattr(self, n) in (None, "")]
        if missing:
            raise InputError("missing required setting(s): " + ", ".join(missing))
        _check_finite(self)
        if self.features_col is not None and self.feature_cols is not None:
            raise InputError("give exactly one of --features-col or --feature-cols")
        if self.unknown_labels not in UNKNOWN_LABEL_MODES:
            raise InputError(f"setting unknown-labels: expected one of {list(UNKNOWN_LABEL_MODES)}, "
                             f"got {self.unknown_labels!r}")
        for f in _option_fields(type(self)):
            if getattr(self, f.name) == "":
                raise InputError(f"setting {_flag(f.name)[2:]}: expected a non-empty string, got ''")
        for name in ("feature_cols", "partition_by"):
            names = getattr(self, name)
            if names is None:
                continue
            if not names:
                raise InputError(f"setting {_flag(name)[2:]}: empty list of column names")
            if len(set(names)) != len(names):
                raise InputError(f"setting {_flag(name)[2:]}: repeated column name in {list(names)}")
        if isinstance(self.top_k, int):  # one K → 1..K
            if isinstance(self.top_k, bool) or self.top_k < 1:
                raise InputError(f"setting top-k: every k must be ≥ 1, got {self.top_k!r}")
            self.top_k, self.top_k_is_range = tuple(range(1, self.top_k + 1)), True
        elif self.top_k is not None:
            ks = tuple(sorted(set(self.top_k)))
            if not ks or ks[0] < 1:
                raise InputError(f"setting top-k: every k must be ≥ 1, got {self.top_k!r}")
            self.top_k = ks
        if self.prediction_col.lower() == self.probability_col.lower():
            raise InputError(f"--prediction-col and --probability-col are both {self.prediction_col!r}")
        return self


# -- the declarations, read by the other views ---------------------------------------------------
def option_params(cls=None) -> dict:
    """``{option name: dataclasses.Field}`` of the options of ``cls`` (default ``TrainConfig``)
    declared with ``param=`` (an Estimator Param), in declaration order. Each field's metadata has
    ``param``, ``param_doc``, ``param_kind`` and ``param_default`` (see ``_opt``)."""
    return {f.name: f for f in _option_fields(cls or TrainConfig) if "param" in f.metadata}


def param_to_option(cls=None) -> dict:
    """``{Param name: option name}`` for the declared Params (``regParam`` → ``l2``, …)."""
    return {f.metadata["param"]: name for name, f in option_params(cls).items()}


def solver_options(solver: str, cls=None) -> list:
    """The options of ``cls`` (default ``TrainConfig``) declared as read by ``solver``
    (``solvers=`` in ``_opt``; ``lbfgs`` → ``gtol``, ``lbfgs_memory``), in declaration order."""
    return [f.name for f in _option_fields(cls or TrainConfig) if solver in f.metadata.get("solvers", ())]
