"""Training, one way down: read → ingest → problem → solver loop → model.

    fit_dataframe(spark, cfg, df=None, validation_df=None, write=True) -> SoftmaxModel
    train(spark, cfg) -> SoftmaxModel                  # the job's entry (validates cfg first)

1. read: ``df`` or ``cfg.input`` (Parquet read by path, so the ingest may read its row groups
   directly), columns checked (``schema``), classes found or coerced (``labels``).
2. ingest: ``TrainingData`` holds the executor-local blocks and summary of the training and
   validation sets, rebuilds a set in place when a pass finds blocks missing, and releases them.
3. problem: ``build_problem`` — the penalty (``penalty``) + the preconditioner (``precondition``)
   + ``distributed.DistributedLoss`` with the class weights folded in, as a ``problem.Problem``.
4. solver loop: ``solvers.make_solver(cfg)`` run by ``loop.TrainingLoop`` (history, log line,
   validation and early stopping, checkpoints, resume, stopping rules — see those modules).
5. model: a ``SoftmaxModel`` with its metadata, written atomically when ``write``.

The objective is J(W, b) = Σ_i s_i·(−log p(y_i|x_i)) / Σ_i s_i + P(W), with s_i the row's sample
weight times its class weight and P the L2 penalty (``penalty.L2Penalty``).

``--class-weight balanced`` gives class c the weight Σ_i s_i / (C · Σ_{i in c} s_i) (the sums of
the sample weights: a row of weight k counts as k repeated rows; scikit-learn's rule with
sample weights). A class absent from the data gets weight 0.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np

from softmax_spark.core.certificate import certify, describe
from softmax_spark.io.checkpoint import finish_run, fingerprint
from softmax_spark.io.mllib_io import write_mllib_model
from softmax_spark.io.model_io import load_any_model, save_model
from softmax_spark.io.storage import check_reachable, check_writable
from softmax_spark.fit.config import RESUME_ALWAYS, RESUME_IF_SET, RESUME_IGNORE, TrainConfig
from softmax_spark.spark.backend import default_parallelism
from softmax_spark.spark.losses import make_loss
from softmax_spark.spark.distributed import DistributedLoss, injected_failure_dir
from softmax_spark.spark.driver_data import DriverData, ingest_in_driver
from softmax_spark.spark.inference_pass import inference_sums, table_from_sums, write_inference
from softmax_spark.core.errors import InputError
from softmax_spark.spark.ingest import ingest
from softmax_spark.spark.parquet_input import open_parquet
from softmax_spark.core.labels import coerce_classes, discover_classes, label_positions
from softmax_spark.spark.schema import check_columns, storage_dtype
from softmax_spark.fit.loop import TrainingLoop, use_console
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.core import penalties
from softmax_spark.core.model_record import COLUMNS, columns_record
from softmax_spark.core.precondition import Preconditioner
from softmax_spark.core.problem import Problem
from softmax_spark.solvers import make_solver, resolve_optimizer
from softmax_spark.solvers.auto import pass_seconds

log = logging.getLogger("softmax_spark")

__all__ = ["train", "fit_dataframe", "TrainingData", "build_problem", "model_metadata", "read_inputs", "class_weights",
           "training_class_weights", "fingerprint_options", "class_weight_sums"]

CHECKPOINT_STATE_FORMAT = 2  # checkpoints hold solver state by field name (solvers.base)


def _initial_model(cfg: TrainConfig, classes, n_features):
    """(coef, intercept) to start from: zeros, or --init-model (ours or MLlib's, at any storage URI;
    rows matched to ``classes`` by ``model_io.load_any_model``; any registered model directory)."""
    if not cfg.init_model:
        return np.zeros((len(classes), n_features)), np.zeros(len(classes))
    init = load_any_model(cfg.init_model, classes=classes, mllib_classes=cfg.init_model_classes, n_features=n_features)
    return init.coef, init.intercept


def class_weight_sums(dist: DistributedLoss) -> np.ndarray:
    """Σ s_i over the rows of each class, of shape (C,), from one pass at W = 0, b = 0.

    There every row has p_i = 1/C, so the intercept gradient is Σ_i s_i (1/C − onehot(y_i)) / Σ s_i
    = 1/C − S_c / S: S_c = S (1/C − ∇_b J_c). ``dist`` must carry no class weights."""
    result = dist(np.zeros((dist.n_classes, dist.n_features)), np.zeros(dist.n_classes))
    sums = result.weight_sum * (1.0 / dist.n_classes - result.grad_intercept)
    return np.where(sums > 1e-12 * result.weight_sum, sums, 0.0)  # rounding of an absent class


def training_class_weights(cfg: TrainConfig, data, summary, n_classes: int) -> np.ndarray | None:
    """``class_weights`` for the ingested ``data.sets["train"]``: with ``balanced`` and a weight
    column, the per-class weight sums come from one pass at W = 0 (``class_weight_sums``); else
    from the summary's counts. Shape (C,) or None."""
    class_sums = None
    if cfg.class_weight == "balanced" and cfg.weight_col:
        plain = make_loss(data.sets["train"].blocks, n_classes, summary.n_features, True,
                          cfg.aggregation_depth, rebuild=data.rebuilder("train"), resident=cfg.resident_tasks)
        class_sums = class_weight_sums(plain)
    return class_weights(cfg, summary, class_sums)


def class_weights(cfg: TrainConfig, summary, class_sums=None) -> np.ndarray | None:
    """Class weights of shape (C,) or None. ``class_sums``: Σ s_i per class (default: the row
    counts, which they are without a weight column)."""
    cw = cfg.class_weight
    if cw is None:
        return None
    n_classes = len(summary.classes)
    if cw == "balanced":
        sums = summary.class_counts.astype(np.float64) if class_sums is None else np.asarray(class_sums, float)
        # scikit-learn's rule S / (C · S_c) on weight sums; a class absent from the data gets weight 0
        return np.where(sums > 0, sums.sum() / (n_classes * np.where(sums > 0, sums, 1.0)), 0.0)
    weights = np.ones(n_classes)
    # a key matches its class by ``labels``' rule (1 == 1.0), or as text (a JSON/YAML key "1" for class 1)
    lookup = {str(c): i for i, c in enumerate(summary.classes)}
    positions = label_positions(list(cw), summary.classes)
    for (label, value), k in zip(cw.items(), positions):
        k = int(k) if k >= 0 else lookup.get(str(label))
        if k is None:
            raise InputError(f"class_weight names label {label!r}, which is not one of the classes {summary.classes}")
        weights[k] = float(value)
    return weights


def fingerprint_options(cfg: TrainConfig, summary) -> str:
    """The run's identity for resuming: every option as its declaration says (``config.RESUME_*``:
    hashed, ignored, or hashed only when set), the data's summary and moments, and the checkpoint
    state format. No hand-kept list: a new option declares how it counts where it is declared."""
    values = dataclasses.asdict(cfg)
    options = {}
    for f in dataclasses.fields(cfg):  # derived (init=False) fields count as always
        mode = f.metadata.get("resume", RESUME_ALWAYS)
        if mode == RESUME_IGNORE or (mode == RESUME_IF_SET and values[f.name] == f.default):
            continue
        options[f.name] = values[f.name]
    options["data"] = summary.to_dict()
    # day-2 data at the same path with the same counts must not resume day 1's run: the feature
    # moments tell the two apart
    options["data_moments"] = fingerprint({"mean": np.asarray(summary.col_mean).tobytes().hex(),
                                           "var": np.asarray(summary.col_var).tobytes().hex()})
    options["checkpoint_state_format"] = CHECKPOINT_STATE_FORMAT
    return fingerprint(options)


class TrainingData:
    """The ingested data sets of one run (``train``, optionally ``validation``) by name.

    ``rebuilder(name)`` is what ``DistributedLoss`` calls when a pass finds block files that its
    tasks could not rewrite (rows that came through Spark): the set is ingested again from the
    same DataFrame — same partitions, same sums — and its new blocks returned. ``release()``
    deletes every set's block files (also as a context manager)."""

    def __init__(self, cfg: TrainConfig, classes, n_partitions: int, driver_bytes: int = 0, driver_table=None):
        self.cfg, self.classes, self.n_partitions = cfg, list(classes), n_partitions
        self.driver_bytes = driver_bytes  # > 0: a set this small is held in the driver (driver_data)
        self.driver_table = driver_table  # the training set's columns, collected already (driver_data)
        self.sets: dict = {}
        self._sources: dict = {}

    def add(self, name: str, frame, files=None, n_features=None):
        """Ingest ``frame`` as set ``name``; returns its ``ingest.IngestedData``."""
        self._sources[name] = (frame, files, n_features)
        self.sets[name] = self._ingest(name)
        return self.sets[name]

    def _ingest(self, name):
        cfg = self.cfg
        frame, files, n_features = self._sources[name]
        if self.driver_bytes and (name == "train" or isinstance(self.sets.get("train"), DriverData)):
            held = ingest_in_driver(frame, cfg.feature_spec, cfg.label_col, self.classes, cfg.weight_col,
                                    cfg.dtype, self.driver_bytes, n_features,
                                    table=self.driver_table if name == "train" else None)
            if held is not None:
                return held
        return ingest(frame, cfg.feature_spec, cfg.label_col, self.classes, cfg.weight_col, cfg.dtype,
                      self.n_partitions, n_features=n_features, files=files)

    def rebuild(self, name: str):
        """Ingest set ``name`` again (replacing its blocks); returns the new blocks RDD. Raises
        ``ingest.InputChangedError`` (an ``InputError``: exit 2) when an input file changed since
        the ingest — its rows would not be the ones the run started from."""
        log.warning("%s block files missing on some executor; rebuilding them", name)
        self.sets[name].check_input()
        self.sets[name].release()
        self.sets[name] = self._ingest(name)
        return self.sets[name].blocks

    def rebuilder(self, name: str):
        return lambda: self.rebuild(name)

    def release(self) -> None:
        for ingested in self.sets.values():
            ingested.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def build_problem(cfg: TrainConfig, data: TrainingData, class_weight=None):
    """(problem, validation_loss or None) for the ingested ``data``: penalty + preconditioner +
    distributed loss (``class_weight`` of shape (C,) folded into the sample weights)."""
    summary = data.sets["train"].summary
    n_classes, n_features = len(data.classes), summary.n_features
    # MLlib's standardization uses the unbiased sample std
    n = max(summary.n_rows, 2)
    col_std = np.sqrt(summary.col_var * n / (n - 1))
    reference = cfg.parametrization == "reference"
    penalty, nonsmooth = penalties.build(cfg, penalties.PenaltyContext(n_classes, n_features, col_std, reference))
    second_moment = summary.col_var if cfg.fit_intercept else summary.col_var + summary.col_mean**2
    centre = cfg.fit_intercept and not (nonsmooth is not None and nonsmooth.has_intercept_bounds)
    if cfg.fit_intercept and not centre:  # bounds on b are bounds on β only when b = β (no centring)
        second_moment = summary.col_var + summary.col_mean**2
    precond = Preconditioner(n_classes, n_features, summary.col_mean if centre else np.zeros(n_features),
                             second_moment, penalty, cfg.fit_intercept, reference, enabled=cfg.precondition)
    dist = make_loss(data.sets["train"].blocks, n_classes, n_features, cfg.fit_intercept,
                     cfg.aggregation_depth, rebuild=data.rebuilder("train"),
                     fail_marker_dir=injected_failure_dir(), class_weight=class_weight,
                     resident=cfg.resident_tasks)
    problem = Problem(dist, precond, penalty, cfg.seed,
                      moments=(summary.covariance, summary.col_mean, summary.col_var))
    problem.n_rows, problem.density = summary.n_rows, getattr(summary, "density", 1.0) or 1.0
    if nonsmooth is not None:
        problem.nonsmooth = nonsmooth.in_theta(precond)
    if "validation" not in data.sets:
        return problem, None
    val_dist = make_loss(data.sets["validation"].blocks, n_classes, n_features, cfg.fit_intercept,
                         cfg.aggregation_depth, rebuild=data.rebuilder("validation"), label="validation",
                         class_weight=class_weight, resident=cfg.resident_tasks)

    def validation_loss(theta):
        return float(val_dist(*precond.to_model(theta)).loss)

    return problem, validation_loss


def l1_penalty_of(cfg: TrainConfig, n_classes: int, n_features: int, col_std):
    """The separable part (``penalties.L1Penalty``: L1 and bounds) that the options ask for, or None;
    an ``InputError`` names a bound whose shape is not (C, D) / (C,)."""
    context = penalties.PenaltyContext(n_classes, n_features, col_std, cfg.parametrization == "reference")
    return penalties.build(cfg, context)[1]


def read_inputs(spark, cfg: TrainConfig, df=None, validation_df=None):
    """(df, its Parquet files or None, validation_df or None, its files, classes), columns checked.

    ``cfg.input`` is read by path so the ingest may read its row groups directly; the files'
    listing order decides the partitions (and so the minibatches). A local input is known from
    its Parquet footers (``parquet_input.open_parquet``: no Spark SQL unless a fallback needs it)."""
    spec = cfg.feature_spec
    files = val_files = None
    if df is None:
        df = open_parquet(spark, cfg.input)
        files = sorted(df.inputFiles())
    check_columns(df, spec, cfg.label_col, cfg.weight_col)
    if cfg.validation_input and validation_df is None:
        validation_df = open_parquet(spark, cfg.validation_input)
        val_files = sorted(validation_df.inputFiles())
        check_columns(validation_df, spec, cfg.label_col, cfg.weight_col)
    if cfg.validation_fraction:
        df, validation_df = df.randomSplit([1.0 - cfg.validation_fraction, cfg.validation_fraction], seed=cfg.seed)
        files = None
    classes = (coerce_classes(cfg.classes, df.schema[cfg.label_col].dataType, cfg.label_col) if cfg.classes
               else discover_classes(df, cfg.label_col, files))
    if len(classes) == 0:
        raise InputError(f"the input has 0 labelled rows in column '{cfg.label_col}'; expected at least one")
    if len(classes) < 2:
        raise InputError(f"column '{cfg.label_col}' holds a single class {classes}; expected at least 2")
    return df, files, validation_df, val_files, classes


def fit_dataframe(spark, cfg: TrainConfig, df=None, validation_df=None, write=True,
                  driver_bytes: int = 0, driver_table=None) -> SoftmaxModel:
    """Train on ``df`` (or ``cfg.input``); write ``cfg.model_dir`` when ``write``. Returns the model.
    ``driver_bytes`` > 0: a training set that small is held in the driver (``driver_data``);
    ``driver_table``: ``df``'s columns already collected by ``driver_data.collect_small``.

    Raises ``InputError`` (bad data or options), ``DivergenceError`` / ``NoProgressError`` (the
    solver could not train)."""
    use_console()
    if write and cfg.model_dir:
        check_writable(cfg.model_dir, cfg.overwrite, "model directory", spark=spark)
    check_reachable(cfg.checkpoint_dir, "--checkpoint-dir", spark)
    check_reachable(cfg.init_model, "--init-model", spark)
    df, files, validation_df, val_files, classes = read_inputs(spark, cfg, df, validation_df)
    # --dtype auto → float32 for array<float> features (schema.storage_dtype); the model's
    # options record the dtype the blocks were cached in
    cfg = dataclasses.replace(cfg, dtype=storage_dtype(cfg.dtype, df.schema, cfg.feature_spec))

    # -- ingest -------------------------------------------------------------------------------
    n_partitions = cfg.num_partitions or default_parallelism(spark)
    t0 = time.perf_counter()
    with TrainingData(cfg, classes, n_partitions, driver_bytes, driver_table) as data:
        summary = data.add("train", df, files).summary
        if cfg.weight_col and summary.weight_sum <= 0:
            raise InputError(f"column '{cfg.weight_col}': every sample weight is 0")
        if validation_df is not None:
            data.add("validation", validation_df, val_files, n_features=summary.n_features)
        ingest_seconds = time.perf_counter() - t0
        log.info("ingested %d rows × %d features, %d classes, %d partitions from %s in %.2f s (%s cache)",
                 summary.n_rows, summary.n_features, len(classes), summary.n_partitions, data.sets["train"].source,
                 ingest_seconds, cfg.dtype)

        # -- problem ----------------------------------------------------------------------------
        class_weight = training_class_weights(cfg, data, summary, len(classes))
        problem, validation_loss = build_problem(cfg, data, class_weight)
        coef0, intercept0 = _initial_model(cfg, classes, summary.n_features)

        # -- solver loop --------------------------------------------------------------------------
        density = getattr(summary, "density", 1.0) or 1.0
        solver_name, solver_reason = resolve_optimizer(cfg, summary.n_rows, len(classes), summary.n_features, density)
        log.info("optimizer %s (%s)", solver_name, solver_reason)
        run_fingerprint = fingerprint_options(cfg, summary)
        loop = TrainingLoop(make_solver(cfg, solver_name), problem, cfg.max_iter, validation_loss, cfg.patience,
                            cfg.checkpoint_dir, cfg.checkpoint_every, run_fingerprint)
        fit_started = time.monotonic()
        result = loop.run(problem.from_model(coef0, intercept0))
        fit_seconds = time.monotonic() - fit_started
        for record in result.history:
            record.setdefault("solver", solver_name)
        certificate = _certificate(problem, result.theta, summary, len(classes), density, fit_seconds)
        inference_table = _inference_table(cfg, data, problem, result, classes, class_weight) \
            if cfg.inference and write else None

    # -- model --------------------------------------------------------------------------------
    coef, intercept = problem.to_model(result.theta)
    nonsmooth_info = {}
    if problem.nonsmooth is not None:  # coordinates on a bound exactly on it; the certificate
        term = problem.nonsmooth
        coef, intercept = term.snap(result.theta, coef, intercept)
        kkt = next((h["kkt_residual"] for h in reversed(result.history) if "kkt_residual" in h), None)
        nonzeros = [int(v) for v in np.count_nonzero(coef, axis=1)]
        nonsmooth_info = {"l1": cfg.l1, "kkt_residual": kkt, "nonzeros_per_class": nonzeros,
                          "nonsmooth_penalty": term.model.to_dict()}
        log.info("KKT residual %s; non-zero coefficients per class %s (of %d)",
                 "n/a" if kkt is None else f"{kkt:.3g}", nonzeros, coef.shape[1])
    metadata = model_metadata(cfg, summary, result, solver_name, solver_reason, problem, class_weight,
                              data_extra={"ingest_seconds": ingest_seconds, "cached_bytes": summary.cached_bytes},
                              **nonsmooth_info, certificate=certificate)
    model = SoftmaxModel(coef, intercept, classes, history=result.history, metadata=metadata)
    if write and cfg.model_dir:
        _write(model, cfg, inference_table)
    if cfg.checkpoint_dir:  # a converged run's checkpoints go; one stopped by max_iter stays resumable
        finish_run(cfg.checkpoint_dir, run_fingerprint, converged=not result.reason.startswith("max_iter"))
    return model


def model_metadata(cfg: TrainConfig, summary, result, solver_name: str, solver_reason: str, problem,
                   class_weight=None, data_extra: dict | None = None, **extra) -> dict:
    """The metadata of a model fitted with ``cfg`` (``fit_dataframe``'s, and each model of
    ``sparkml.fit_multiple``'s path): λ and fit_intercept; ``"columns"``, the training columns under
    the model's own names (``core.model_record``: what scoring and evaluation read); ``"options"``,
    every option as the job spelt it (a record of the run, read back only by coefficient inference
    and by models written before ``"columns"``); the data summary (``data_extra`` added); how the
    solver ended (``result``: a ``loop`` result); the penalty; then ``extra``."""
    return {
        "l2": cfg.l2,
        "fit_intercept": cfg.fit_intercept,
        COLUMNS: columns_record(cfg.feature_spec, cfg.label_col, cfg.weight_col),
        "options": {**dataclasses.asdict(cfg), "stop_reason": result.reason},
        "data_summary": {
            **summary.to_dict(),
            **(data_extra or {}),
            "dtype": cfg.dtype,
            "class_weight": None if class_weight is None else np.asarray(class_weight).tolist(),
        },
        "stop_reason": result.reason,
        "solver": solver_name,
        "solver_reason": solver_reason,
        "passes": problem.passes,
        "returned_iteration": result.returned_iteration,
        "penalty": problem.penalty.to_dict(),
        **extra,
    }


# the certificate's exact Hessian pass is skipped when estimated dearer than this share of the fit (or
# CERTIFICATE_MIN_SECONDS, whichever is larger): at 1M × 64 × 10 it is ~175 gradient passes (issue 26)
CERTIFICATE_FIT_SHARE = 0.25
CERTIFICATE_MIN_SECONDS = 5.0


def _certificate(problem, theta, summary=None, n_classes=None, density=1.0, fit_seconds=None) -> dict:
    """``certificate.certify`` at the returned θ (one exact Hessian pass; none above its size limit),
    logged; a failure to certify never fails the fit (the status records it). Not computed for an L1
    part or bounds (∇F ≠ 0 at their optimum: the KKT residual is their certificate), nor when the
    pass is estimated (``auto.pass_seconds``) dearer than max(``CERTIFICATE_MIN_SECONDS``,
    ``CERTIFICATE_FIT_SHARE`` × the fit's seconds)."""
    if problem.nonsmooth is not None:
        cert = {"bound": None, "status": "not computed: an L1 part or bounds, whose certificate is the KKT "
                                         "residual (kkt_residual)"}
        log.info("%s", describe(cert))
        return cert
    if summary is not None and fit_seconds is not None:
        _, hessian_pass = pass_seconds(summary.n_rows, n_classes, summary.n_features, problem.fit_intercept, density)
        budget = max(CERTIFICATE_MIN_SECONDS, CERTIFICATE_FIT_SHARE * fit_seconds)
        if hessian_pass > budget:
            cert = {"bound": None, "status": f"not computed: its exact Hessian pass ≈ {hessian_pass:.3g} s estimated "
                                             f"> {budget:.3g} s (max({CERTIFICATE_MIN_SECONDS:g} s, "
                                             f"{CERTIFICATE_FIT_SHARE:g} × the fit's {fit_seconds:.3g} s))"}
            log.info("%s", describe(cert))
            return cert
    try:
        cert = certify(problem, theta)
    except Exception as exc:  # noqa: BLE001 — the model is fine; only its certificate is missing
        cert = {"bound": None, "status": f"not computed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    log.info("%s", describe(cert))
    return cert


def _inference_table(cfg, data, problem, result, classes, class_weight):
    """``--inference``: the coefficient table at the fitted model over the ingested data (one pass)."""
    coef, intercept = problem.to_model(result.theta)
    probe = SoftmaxModel(coef, intercept, classes, metadata={
        "l2": cfg.l2, "options": dataclasses.asdict(cfg),
        "data_summary": {"class_weight": None if class_weight is None else class_weight.tolist()}})
    table = table_from_sums(probe, inference_sums(data, probe, cfg), cfg)
    log.info("coefficient inference (%s covariance) for %d rows", table.attrs["covariance"], len(table))
    return table


def _write(model: SoftmaxModel, cfg: TrainConfig, inference_table=None) -> None:
    writers = []
    if cfg.write_mllib:
        writers.append(lambda tmp: write_mllib_model(model, os.path.join(tmp, "mllib")))
    if inference_table is not None:
        writers.append(lambda tmp: write_inference(inference_table, tmp))
    extra = (lambda tmp: [w(tmp) for w in writers]) if writers else None  # noqa: E731
    save_model(model, cfg.model_dir, overwrite=cfg.overwrite, extra_writer=extra)
    log.info("model written to %s; %s", cfg.model_dir, describe(model.metadata.get("certificate")))


def train(spark, cfg: TrainConfig) -> SoftmaxModel:
    """The job's entry: validate the config, train on ``cfg.input``, write ``cfg.model_dir``."""
    cfg.validate()
    return fit_dataframe(spark, cfg)
