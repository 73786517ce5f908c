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
clears when they came from the config file). Fields with ``init=False`` are derived by
``validate()``, not options.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import logging
import math
import sys
import types
import typing
from dataclasses import dataclass, field

from .errors import InputError

__all__ = ["TrainConfig", "EvaluateConfig", "parse_config", "config_from_dict", "build_parser", "load_yaml"]


def _shown(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (an error line quotes a value, never a whole
    document)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def _check_finite(cfg) -> None:
    """Every float option is a finite number (``inf`` or ``nan`` would pass a ``≥ 0`` check and
    poison the solver): ``InputError`` naming the flag otherwise."""
    for f in _option_fields(type(cfg)):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{_flag(f.name)} must be a finite number, got {value}")


# How an option enters the resume fingerprint (``training.fingerprint_options``): a checkpoint
# resumes only a run whose fingerprinted options equal its own.
RESUME_ALWAYS = "always"    # changes the model: hashed with its value
RESUME_IGNORE = "ignore"    # where or how long to run, not what is computed (paths, max_iter, …)
RESUME_IF_SET = "if_set"    # added after checkpoints existed: hashed only when not its default, so
                            # a checkpoint written before the option existed still resumes


def _opt(default, help, resume: str = RESUME_ALWAYS, **kw):
    """One option's declaration: default, help text (the flag's and the docs' text), and how it
    enters the resume fingerprint (``RESUME_*``). New options that change the model are declared
    with ``resume=RESUME_IF_SET`` (a test keeps the fingerprints of older versions' runs fixed)."""
    return field(default=default, metadata={"help": help, "resume": resume, **kw})


class _FeatureSource:
    """The ``features_col`` / ``feature_cols`` pair of a job's config as a ``FeatureSpec``."""

    @property
    def feature_spec(self):
        from .features import FeatureSpec

        if self.feature_cols:
            return FeatureSpec(features_col=None, feature_cols=tuple(self.feature_cols))
        return FeatureSpec(features_col=self.features_col or "features")


@dataclass
class TrainConfig(_FeatureSource):
    """Every option of ``jobs/train.py`` (flag ``--name-with-dashes``, YAML key ``name_with_underscores``)."""

    input: str | None = _opt(None, "training data: any Parquet path Spark reads (dir, file, glob, URI)")
    model_dir: str | None = _opt(None, "where the model directory is written, atomically (local path or URI: hdfs://, s3a://, viewfs://, …)", resume=RESUME_IGNORE)
    overwrite: bool = _opt(False, "replace an existing model directory", resume=RESUME_IGNORE)
    features_col: str | None = _opt("features", "feature column: an ml Vector (any mix of dense and sparse rows), array<double> or array<float>")
    feature_cols: list | None = _opt(None, "comma-separated numeric feature columns (instead of --features-col)")
    label_col: str = _opt("label", "label column: any orderable type (int, string, …)")
    weight_col: str | None = _opt(None, "optional sample-weight column (≥ 0)")
    classes: list | None = _opt(None, "comma-separated class labels (default: sorted distinct labels)")
    dtype: str = _opt("auto", "storage dtype of the cached features: auto (float32 for array<float> or float "
                      "feature columns, else float64), float64 or float32 (sums are float64)",
                      choices=("auto", "float64", "float32"))
    num_partitions: int | None = _opt(None, "coalesce the input to at most this many partitions (default: Spark's default parallelism)")
    aggregation_depth: int = _opt(2, "treeAggregate depth (≥ 1)")
    resident_tasks: bool = _opt(True, "under a local master, keep one task per core "
                                "running for the whole fit and send it every pass (the same sums; see "
                                "softmax_spark/resident.py); --no-resident-tasks runs each pass as a Spark job")
    optimizer: str = _opt("auto", "auto (newton when C·D̃ ≤ 4096 and a Hessian pass is affordable, qn-newton-cg when "
                          "C·D̃ > 4096, else lbfgs; with --l1 or bounds: prox-newton or qn-newton-cg; see solvers/auto.py), newton (exact Hessian), "
                          "newton-cg (Hessian-vector products), lbfgs (full batch), sgd (minibatch; --batch-fraction 1 "
                          "= gradient descent), prox-newton (L1/bounds: exact Hessian + coordinate descent) or owlqn "
                          "(L1/bounds: orthant-wise L-BFGS) or qn-newton-cg (L-BFGS / OWL-QN, then an orthant-wise Newton-CG "
                          "finish: exact above the Newton bound)",
                          choices=("auto", "newton", "newton-cg", "lbfgs", "sgd", "prox-newton", "owlqn", "qn-newton-cg"))
    l2: float = _opt(1e-4, "λ in J = mean weighted log-loss + λ‖W‖²_F (λ ≥ 0; intercept not penalised)")
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
                                   "softmax_spark/ml.py); overrides --tol / --kkt-tol for those solvers", resume=RESUME_IF_SET)
    kkt_tol: float | None = _opt(None, "prox-newton / owlqn / qn-newton-cg: stop when the KKT residual (model "
                                 "coordinates) ≤ kkt_tol (default: prox-newton 1e-10, owlqn and qn-newton-cg 1e-9)", resume=RESUME_IF_SET)
    fit_intercept: bool = _opt(True, "fit the intercept b")
    standardize: bool = _opt(False, "penalise standardised coefficients, λ Σ (σ_j w_cj)² (MLlib standardization=True)")
    parametrization: str = _opt("full", "full (C rows) or reference (C−1 free rows, last row pinned to 0; the penalty is on the centred rows, so both give the same probabilities)",
                                choices=("full", "reference"))
    precondition: bool = _opt(True, "optimise in centred and scaled coordinates (same objective)")
    class_weight: typing.Any = _opt(None, "'balanced' (Σs / (C·Σ_c s): per-class sums of the sample weights) or, in the config file, a map label → weight")
    init_model: str | None = _opt(None, "warm start from a softmax_spark model dir or a Spark MLlib LogisticRegressionModel dir")
    init_model_classes: list | None = _opt(None, "an MLlib --init-model's class labels in its label-index order 0, 1, …, comma-separated (MLlib models carry no label names)")
    seed: int = _opt(0, "seed of the minibatch sampling and the validation split")
    max_iter: int = _opt(1000, "maximum iterations (≥ 1)", resume=RESUME_IGNORE)
    tol: float | None = _opt(None, "stopping tolerance; default by solver — newton: 1e-16, newton-cg: 1e-14 on the Newton decrement ½gᵀH⁻¹g / max(|J|, 1); lbfgs: 1e-9, stop when the decrease over the last 5 iterations and the predicted remaining decrease ½gᵀH⁻¹g, both divided by max(|J_past|, |J|, 1), are ≤ tol; sgd: when the full-data J (one extra pass every ⌈1/batch-fraction⌉ iterations, at the averaged parameters; never a minibatch J) has not dropped below best − tol·max(|best|,1) for --n-iter-no-change checks; 0 disables")
    gtol: float = _opt(1e-9, "lbfgs also stops when the largest gradient component (in the optimizer's coordinates) ≤ gtol")
    lbfgs_memory: int = _opt(10, "L-BFGS history size")
    batch_fraction: float = _opt(1.0, "sgd: fraction of rows per step, in (0, 1]")
    learning_rate: float | None = _opt(None, "sgd: step size η (default: 1/L, L Böhning's curvature bound: from the covariance when D ≤ 512, else by power iteration)")
    schedule: str = _opt("constant", "sgd: constant, invscaling (η/(t+1)^power_t) or step (η·decay_rate^⌊t/decay_every⌋)",
                         choices=("constant", "invscaling", "step"))
    power_t: float = _opt(0.5, "sgd: invscaling exponent")
    decay_rate: float = _opt(0.5, "sgd: step-schedule factor")
    decay_every: int = _opt(100, "sgd: step-schedule period (iterations)")
    momentum: float = _opt(0.0, "sgd: momentum in [0, 1)")
    nesterov: bool = _opt(False, "sgd: Nesterov momentum")
    average: bool = _opt(True, "sgd with --batch-fraction < 1: return the polynomial-decay average of the iterates (weights ∝ t^8, Shamir & Zhang 2013), which averages out minibatch noise; --no-average returns the last iterate")
    n_iter_no_change: int = _opt(5, "sgd: full-data checks (every ⌈1/batch-fraction⌉ iterations; every iteration at batch fraction 1) without improvement by tol before stopping")
    validation_input: str | None = _opt(None, "validation Parquet for early stopping on validation log-loss")
    validation_fraction: float = _opt(0.0, "hold out this fraction of the training rows for validation instead")
    patience: int = _opt(10, "early stopping: iterations without a better validation loss before stopping", resume=RESUME_IGNORE)
    checkpoint_dir: str | None = _opt(None, "checkpoint directory (local path or URI); rerunning the same command resumes from it", resume=RESUME_IGNORE)
    checkpoint_every: int = _opt(10, "checkpoint every K iterations", resume=RESUME_IGNORE)
    write_mllib: bool = _opt(True, "also write <model-dir>/mllib in Spark MLlib's LogisticRegressionModel layout", resume=RESUME_IGNORE)
    inference: bool = _opt(False, "also write coefficient inference (std errors, z, p-values, Wald intervals; see docs/summary-and-inference.md) to <model-dir>/inference.parquet and inference.txt: one extra data pass, C·D̃ ≤ 4096", resume=RESUME_IGNORE)
    # K-fold cross-validation along an L2 path (softmax_spark.cv_job; docs/model-selection.md)
    cv_folds: int | None = _opt(None, "choose --l2 by K-fold cross-validation (K ≥ 2) along a warm-started path: one ingest, every pass computing all K folds; writes the refit model with the path table (cv_path.csv/.parquet/.txt) and cv_curve.png", resume=RESUME_IF_SET)
    l2_path: list[float] | None = _opt(None, "with --cv-folds: comma-separated λ values (--l2 units); default --cv-num-l2 values from a documented start (glmnet's λ_max for α = 0) down by --cv-l2-ratio", resume=RESUME_IF_SET)
    cv_num_l2: int = _opt(20, "with --cv-folds and no --l2-path: number of λ values", resume=RESUME_IF_SET)
    cv_l2_ratio: float = _opt(1e-4, "with --cv-folds and no --l2-path: smallest / largest λ", resume=RESUME_IF_SET)
    cv_fold_col: str | None = _opt(None, "with --cv-folds: integer column in [0, K) giving each row's fold (default: a hash of the row seeded by --seed)", resume=RESUME_IF_SET)
    cv_metric: str = _opt("logLoss", "with --cv-folds: validation metric, logLoss, accuracy or f1 (as MLlib's MulticlassClassificationEvaluator)", resume=RESUME_IF_SET)
    cv_one_standard_error: bool = _opt(False, "with --cv-folds: choose the largest λ within one standard error of the best mean metric (glmnet's lambda.1se)", resume=RESUME_IF_SET)

    def validate(self) -> "TrainConfig":
        if not self.input:
            raise InputError("--input is required")
        if not self.model_dir:
            raise InputError("--model-dir is required")
        _check_finite(self)
        checks = [
            (self.l2 >= 0, f"--l2 must be ≥ 0, got {self.l2}"),
            (0 < self.batch_fraction <= 1, f"--batch-fraction must be in (0, 1], got {self.batch_fraction}"),
            (self.learning_rate is None or self.learning_rate > 0, f"--learning-rate must be > 0, got {self.learning_rate}"),
            (self.max_iter >= 1, f"--max-iter must be ≥ 1, got {self.max_iter}"),
            (self.tol is None or self.tol >= 0, f"--tol must be ≥ 0, got {self.tol}"),
            (self.gtol >= 0, f"--gtol must be ≥ 0, got {self.gtol}"),
            (self.aggregation_depth >= 1, f"--aggregation-depth must be ≥ 1, got {self.aggregation_depth}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
            (0 <= self.validation_fraction < 1, f"--validation-fraction must be in [0, 1), got {self.validation_fraction}"),
            (not (self.validation_input and self.validation_fraction), "give --validation-input or --validation-fraction, not both"),
            (self.patience >= 1, f"--patience must be ≥ 1, got {self.patience}"),
            (self.checkpoint_every >= 1, f"--checkpoint-every must be ≥ 1, got {self.checkpoint_every}"),
            (self.n_iter_no_change >= 1, f"--n-iter-no-change must be ≥ 1, got {self.n_iter_no_change}"),
            (self.lbfgs_memory >= 1, f"--lbfgs-memory must be ≥ 1, got {self.lbfgs_memory}"),
            (self.num_partitions is None or self.num_partitions >= 1, f"--num-partitions must be ≥ 1, got {self.num_partitions}"),
            (self.decay_every >= 1, f"--decay-every must be ≥ 1, got {self.decay_every}"),
            (self.cv_folds is None or self.cv_folds >= 2, f"--cv-folds must be ≥ 2, got {self.cv_folds}"),
            (self.cv_num_l2 >= 1, f"--cv-num-l2 must be ≥ 1, got {self.cv_num_l2}"),
            (0 < self.cv_l2_ratio <= 1, f"--cv-l2-ratio must be in (0, 1], got {self.cv_l2_ratio}"),
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
            raise InputError(f"--optimizer {self.optimizer} does not handle --l1 or bounds; use auto, prox-newton "
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

    def inherit_from_model(self, options: dict) -> list[str]:
        """Fill what was not given from the training options recorded in the model's metadata
        (``metadata.json`` → ``options``): the feature columns (``feature_cols``, else
        ``features_col``) when neither ``features_col`` nor ``feature_cols`` is set, and
        ``label_col`` when unset. Returns one phrase per setting taken (for the log)."""
        from .features import FeatureSpec

        taken = []
        spec = FeatureSpec.of_model_options(options)
        if self.features_col is None and self.feature_cols is None and spec is not None:
            self.features_col, self.feature_cols = spec.features_col, spec.feature_cols
            taken.append(f"{'feature_cols' if spec.feature_cols else 'features_col'} {spec.describe()}")
        if self.label_col is None and options.get("label_col"):
            self.label_col, self.label_col_from_model = str(options["label_col"]), True
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


# -- parsing ------------------------------------------------------------------------------------
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _option_fields(cls) -> list:
    """The fields that are options (flags and keys); ``init=False`` fields are derived."""
    return [f for f in dataclasses.fields(cls) if f.init]


def _members(tp) -> list:
    """The non-None types of an annotation: ``int | tuple[int, ...] | None`` → [int, tuple[int, ...]]."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _describe(tp) -> str:
    if typing.get_origin(tp) in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"list of {args[0].__name__}" if args else "list"
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    """The value does not fit this type (``_coerce`` tries the field's next type)."""


def _convert(tp, value, text: bool):
    """``value`` as ``tp``, else ``_Mismatch``. ``text``: a string to parse (a comma-separated
    item, or the value of a field whose type has several members, e.g. ``int | tuple[int, ...]``:
    "3" → 3, "1,4" → (1, 4)); otherwise a YAML value must already have the type."""
    if tp is typing.Any:
        return value
    origin = typing.get_origin(tp)
    if tp is list or origin in (list, tuple):
        if isinstance(value, str):  # "a, b" → [a, b]
            items = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise _Mismatch
        container = tuple if origin is tuple else list
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if not args:  # an untyped list: the items as given
            return container(items)
        if args[0] is str:  # typed names: surrounding blanks and empty items dropped
            items = [v.strip() if isinstance(v, str) else v for v in items]
            items = [v for v in items if v != ""]
        return container(_convert(args[0], v, text=isinstance(v, str)) for v in items)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp in (int, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (tp is float or isinstance(value, int)):
            return tp(value)
        if text and isinstance(value, str):
            try:
                return tp(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise _Mismatch


def _coerce(cls, name, value, key: str | None = None):
    """A YAML value (or a flag's text) for field ``name`` → its type (ints become floats where
    floats are expected); an ``InputError`` naming ``key`` (default: the config key) if it does not fit."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    key = key or f"config key '{name}'"
    if value is None:
        return None
    members = _members(typing.get_type_hints(cls)[name])
    text = isinstance(value, str) and len(members) > 1 and str not in members
    for tp in members:
        try:
            converted = _convert(tp, value, text)
        except _Mismatch:
            continue
        choices = f.metadata.get("choices")
        if choices and converted not in choices:
            raise InputError(f"{key}: {_shown(value)} is not one of {', '.join(choices)}")
        return converted
    raise InputError(f"{key}: expected {' or '.join(_describe(tp) for tp in members)}, got {_shown(value)}")


def build_parser(cls, prog: str, description: str) -> argparse.ArgumentParser:
    # allow_abbrev=False: a prefix of a flag is an unknown flag, never silently that flag
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False)
    parser.add_argument("--config", help="YAML file with the same keys as these flags; flags override it")
    hints = typing.get_type_hints(cls)
    for f in _option_fields(cls):
        flag = _flag(f.name)
        members = _members(hints[f.name])
        tp = members[0] if len(members) == 1 else None
        help_text = f.metadata.get("help", "")
        if tp is bool:
            if f.metadata.get("negatable", True):
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            else:
                parser.add_argument(flag, action="store_const", const=True, default=None, help=help_text)
        elif tp in (int, float):
            parser.add_argument(flag, type=tp, default=None, help=help_text)
        elif tp is str:
            parser.add_argument(flag, default=None, help=help_text, choices=f.metadata.get("choices"))
        else:  # lists, several types, Any: the text, converted by parse_config as a YAML string
            parser.add_argument(flag, default=None, help=help_text)
    return parser


def suggest(word: str, candidates) -> str | None:
    """The candidate ``word`` most likely meant: the only one it is a prefix of, else the
    closest by ``difflib`` (ratio ≥ 0.7), else None."""
    candidates = list(candidates)
    starts = [c for c in candidates if c.startswith(word)] if word else []
    if len(starts) == 1:
        return starts[0]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.7)
    return close[0] if close else None


def config_from_dict(cls, values: dict, source: str = "config"):
    """``cls`` from a mapping of keys to YAML values; not validated. Keys are the field names
    (``batch_fraction``); the dashed spelling (``batch-fraction``) is read with a deprecation
    warning."""
    names = {f.name for f in _option_fields(cls)}
    kwargs = {}
    dashed = []
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in names:
            hint = suggest(name, names)
            hint = f" (did you mean '{hint}'?)" if hint else ""
            raise InputError(f"{source}: unknown key '{key}'{hint}; known keys: {', '.join(sorted(names))}")
        if name != key:
            dashed.append(f"'{key}' → '{name}'")
        if value is None:  # null: not given
            continue
        try:
            kwargs[name] = _coerce(cls, name, value, key=f"config key '{key}'")
        except InputError as exc:  # say which file the bad value is in
            raise InputError(f"{source}: {exc}") from None
    if dashed:
        logging.getLogger("softmax_spark").warning(
            "%s: keys with '-' are deprecated, write the flag's name with '_': %s", source, ", ".join(dashed))
    return cls(**kwargs)


def _yaml_loader():
    """``yaml.SafeLoader`` refusing aliases (``*name``): a few hundred bytes of nested aliases
    expand to millions of values ("billion laughs"); a config file has no use for them."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"alias *{event.anchor} (aliases are not allowed in a config file)", event.start_mark)
            return super().compose_node(parent, index)

    return NoAliasLoader


def load_yaml(path: str) -> dict:
    import yaml

    try:
        with open(path) as f:
            data = yaml.load(f, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader without aliases
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem else ""
        raise InputError(
            f"config file {path} is not valid YAML{where}{detail}; expected a mapping of keys to values"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"config file {path} must hold a mapping of keys to values")
    return data


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 itself; we want InputError's one line
        _print_short_usage(self)
        raise InputError(message)


def _print_short_usage(parser) -> None:
    # the full usage of ~40 flags would bury the error line: one line pointing at --help
    print(f"usage: {parser.prog} [--config FILE] [--flag VALUE ...]; {parser.prog} --help lists every flag",
          file=sys.stderr, flush=True)


def _unrecognized(parser, extras: list[str]) -> str:
    """argparse's message for ``extras``, plus a "did you mean" for each unknown flag."""
    flags = [option[2:] for action in parser._actions for option in action.option_strings if option.startswith("--")]
    hints = []
    for token in extras:
        if token.startswith("--"):
            word = token[2:].split("=", 1)[0]
            match = suggest(word, flags)
            if match:
                hints.append(f"--{word}: did you mean --{match}?")
    message = "unrecognized arguments: " + " ".join(extras)
    return message + ("; " + "; ".join(hints) if hints else "")


def parse_config(cls, argv, prog: str = "job", description: str = ""):
    """--config FILE first, then the command-line flags over it; returns a validated ``cls``."""
    parser = build_parser(cls, prog, description)
    parser.__class__ = _Parser
    namespace, extras = parser.parse_known_args(argv)
    if extras:
        _print_short_usage(parser)
        raise InputError(_unrecognized(parser, extras))
    args = vars(namespace)
    config_path = args.pop("config")
    values = load_yaml(config_path) if config_path else {}
    cfg = config_from_dict(cls, values, source=f"config file {config_path}")
    options = {f.name: f for f in _option_fields(cls)}
    given = {name: value for name, value in args.items() if value is not None}
    for name, value in given.items():
        setattr(cfg, name, _coerce(cls, name, value, key=f"argument {_flag(name)}"))
    for name in given:  # a flag choosing one of two exclusive options drops the file's other one
        for other in options[name].metadata.get("excludes", ()):
            if other not in given:
                setattr(cfg, other, options[other].default)
    validate = getattr(cfg, "validate", None)
    return validate() if validate else cfg
