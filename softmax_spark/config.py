"""Job configuration: one dataclass per job; flags and YAML keys are the same names.

``parse_config(TrainConfig, argv)`` reads ``--config FILE`` (YAML mapping; keys as the flags,
with ``_`` or ``-``), then applies the flags given on the command line on top; an unknown key,
a value of the wrong type or an invalid YAML file is an ``InputError``.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field

from .errors import InputError

__all__ = ["TrainConfig", "parse_config", "config_from_dict", "build_parser"]


def _opt(default, help, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """Every option of ``jobs/train.py`` (flag ``--name-with-dashes``, YAML key ``name_with_underscores``)."""

    input: str | None = _opt(None, "training data: any Parquet path Spark reads (dir, file, glob, URI)")
    model_dir: str | None = _opt(None, "where the model directory is written (local path), atomically")
    overwrite: bool = _opt(False, "replace an existing model directory")
    features_col: str | None = _opt("features", "feature column: array<double>, array<float> or dense ml Vector")
    feature_cols: list | None = _opt(None, "comma-separated numeric feature columns (instead of --features-col)")
    label_col: str = _opt("label", "label column: any orderable type (int, string, …)")
    weight_col: str | None = _opt(None, "optional sample-weight column (≥ 0)")
    classes: list | None = _opt(None, "comma-separated class labels (default: sorted distinct labels)")
    dtype: str = _opt("float64", "storage dtype of the cached features: float64 or float32 (sums are float64)",
                      choices=("float64", "float32"))
    num_partitions: int | None = _opt(None, "coalesce the input to at most this many partitions (default: Spark's default parallelism)")
    aggregation_depth: int = _opt(2, "treeAggregate depth (≥ 1)")
    optimizer: str = _opt("lbfgs", "lbfgs (full batch) or sgd (minibatch; --batch-fraction 1 = gradient descent)",
                          choices=("lbfgs", "sgd"))
    l2: float = _opt(1e-4, "λ in J = mean weighted log-loss + λ‖W‖²_F (λ ≥ 0; intercept not penalised)")
    fit_intercept: bool = _opt(True, "fit the intercept b")
    standardize: bool = _opt(False, "penalise standardised coefficients, λ Σ (σ_j w_cj)² (MLlib standardization=True)")
    parametrization: str = _opt("full", "full (C rows) or reference (C−1 free rows, last row pinned to 0)",
                                choices=("full", "reference"))
    precondition: bool = _opt(True, "optimise in centred and scaled coordinates (same objective)")
    class_weight: typing.Any = _opt(None, "'balanced' (n / (C·n_c)) or, in the config file, a map label → weight")
    init_model: str | None = _opt(None, "warm start from a softmax_spark model dir or a Spark MLlib LogisticRegressionModel dir")
    seed: int = _opt(0, "seed of the minibatch sampling and the validation split")
    max_iter: int = _opt(1000, "maximum iterations (≥ 1)")
    tol: float = _opt(1e-10, "lbfgs: stop when the last decrease (J_prev − J) and the predicted remaining decrease ½gᵀH⁻¹g, both divided by max(|J_prev|, |J|, 1), are ≤ tol; sgd: when J has not dropped below best − tol·max(|best|,1) for --n-iter-no-change iterations; 0 disables")
    gtol: float = _opt(1e-9, "lbfgs also stops when the largest gradient component (in the optimizer's coordinates) ≤ gtol")
    lbfgs_memory: int = _opt(10, "L-BFGS history size")
    batch_fraction: float = _opt(1.0, "sgd: fraction of rows per step, in (0, 1]")
    learning_rate: float | None = _opt(None, "sgd: step size η (default: 1/L, L the curvature bound computed at ingest)")
    schedule: str = _opt("constant", "sgd: constant, invscaling (η/(t+1)^power_t) or step (η·decay_rate^⌊t/decay_every⌋)",
                         choices=("constant", "invscaling", "step"))
    power_t: float = _opt(0.5, "sgd: invscaling exponent")
    decay_rate: float = _opt(0.5, "sgd: step-schedule factor")
    decay_every: int = _opt(100, "sgd: step-schedule period (iterations)")
    momentum: float = _opt(0.0, "sgd: momentum in [0, 1)")
    nesterov: bool = _opt(False, "sgd: Nesterov momentum")
    average: bool = _opt(False, "sgd: return the Polyak–Ruppert average of the iterates")
    n_iter_no_change: int = _opt(5, "sgd: iterations without improvement (by tol) before stopping")
    validation_input: str | None = _opt(None, "validation Parquet for early stopping on validation log-loss")
    validation_fraction: float = _opt(0.0, "hold out this fraction of the training rows for validation instead")
    patience: int = _opt(10, "early stopping: iterations without a better validation loss before stopping")
    checkpoint_dir: str | None = _opt(None, "checkpoint directory (local); rerunning the same command resumes from it")
    checkpoint_every: int = _opt(10, "checkpoint every K iterations")
    write_mllib: bool = _opt(True, "also write <model-dir>/mllib in Spark MLlib's LogisticRegressionModel layout")
    fail_first_attempt_dir: str | None = _opt(None, "TEST ONLY: fail each task's first attempt once (markers here)")

    def validate(self) -> "TrainConfig":
        if not self.input:
            raise InputError("--input is required")
        if not self.model_dir:
            raise InputError("--model-dir is required")
        checks = [
            (self.l2 >= 0, f"--l2 must be ≥ 0, got {self.l2}"),
            (0 < self.batch_fraction <= 1, f"--batch-fraction must be in (0, 1], got {self.batch_fraction}"),
            (self.learning_rate is None or self.learning_rate > 0, f"--learning-rate must be > 0, got {self.learning_rate}"),
            (self.max_iter >= 1, f"--max-iter must be ≥ 1, got {self.max_iter}"),
            (self.tol >= 0, f"--tol must be ≥ 0, got {self.tol}"),
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
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        if self.feature_cols and self.features_col not in (None, "features"):
            raise InputError("give --features-col or --feature-cols, not both")
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise InputError(f"class_weight must be 'balanced' or a map label → weight, got {cw!r}")
        if isinstance(cw, dict) and any(not isinstance(v, (int, float)) or v < 0 for v in cw.values()):
            raise InputError("class_weight map values must be numbers ≥ 0")
        return self


# -- parsing ------------------------------------------------------------------------------------
def _base_type(tp):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


def _coerce(cls, name, value):
    """A YAML value for field ``name`` → its type (ints become floats where floats are expected)."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    tp = _base_type(typing.get_type_hints(cls)[name])
    if value is None:
        return None
    if tp is typing.Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise InputError(f"config key '{name}': expected true or false, got {value!r}")
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is list:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return value
    if tp is str and isinstance(value, str):
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise InputError(f"config key '{name}': {value!r} is not one of {', '.join(choices)}")
        return value
    raise InputError(f"config key '{name}': expected {tp.__name__}, got {value!r}")


def build_parser(cls, prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", help="YAML file with the same keys as these flags; flags override it")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        tp = _base_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif tp is list:
            parser.add_argument(flag, default=None, help=help_text, type=lambda s: [v.strip() for v in s.split(",") if v.strip()])
        elif tp in (int, float):
            parser.add_argument(flag, type=tp, default=None, help=help_text)
        else:
            parser.add_argument(flag, default=None, help=help_text, choices=f.metadata.get("choices"))
    return parser


def config_from_dict(cls, values: dict, source: str = "config"):
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in names:
            raise InputError(f"{source}: unknown key '{key}'; known keys: {', '.join(sorted(names))}")
        try:
            kwargs[name] = _coerce(cls, name, value)
        except InputError as exc:  # say which file the bad value is in
            raise InputError(f"{source}: {exc}") from None
    return cls(**kwargs)


def load_yaml(path: str) -> dict:
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f)
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
        raise InputError(message)


def parse_config(cls, argv, prog: str = "job", description: str = ""):
    """--config FILE first, then the command-line flags over it; returns a validated ``cls``."""
    parser = build_parser(cls, prog, description)
    parser.__class__ = _Parser
    args = vars(parser.parse_args(argv))
    config_path = args.pop("config")
    values = load_yaml(config_path) if config_path else {}
    cfg = config_from_dict(cls, values, source=f"config file {config_path}")
    for name, value in args.items():
        if value is not None:
            setattr(cfg, name, value)
    validate = getattr(cfg, "validate", None)
    return validate() if validate else cfg
