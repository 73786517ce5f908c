"""The training loop: ingest once, then iterate an optimizer over distributed (loss, gradient).

    J(W, b) = Σ_i s_i·(−log p(y_i|x_i)) / Σ_i s_i + λ Σ_cj p_j W_cj²      (p_j = 1 unless --standardize)

Per iteration: the optimizer asks for J and ∇J at θ; ``Preconditioner`` maps θ → (W, b);
``DistributedLoss`` returns the data term's means from one Spark job; the driver adds the L2
term and maps the gradient back to θ. One log line per iteration; the history, checkpoints and
early stopping live here; optimizers are pure (``optim``, ``lbfgs``).

Stopping (``--tol``): with f_k = J after iteration k,
- lbfgs stops when (f_{k−1} − f_k) / max(|f_{k−1}|, |f_k|, 1) ≤ tol, or the largest gradient
  component in θ is ≤ gtol, or the line search can make no progress (numerical optimum);
- sgd stops when f_k (the minibatch objective) has not dropped below best − tol·max(|best|, 1)
  for ``n_iter_no_change`` consecutive iterations;
- both stop after ``max_iter`` iterations, or when the validation loss has not improved for
  ``patience`` iterations (early stopping returns the best iterate).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time

import numpy as np

from .checkpoint import finish_run, fingerprint, latest_checkpoint, save_checkpoint
from .config import TrainConfig
from .distributed import DistributedLoss
from .errors import DivergenceError, InputError
from .ingest import check_columns, discover_classes, ingest, read_parquet
from .lbfgs import LbfgsState, lbfgs_init, lbfgs_step, two_loop_direction
from .loss import add_l2
from .model import SoftmaxModel
from .optim import AverageState, SgdState, make_schedule, polyak_average_init, polyak_average_update, sgd
from .precondition import Preconditioner, l2_feature_weights

log = logging.getLogger("softmax_spark")

__all__ = ["train", "fit_dataframe"]

TOL_WINDOW = 5  # lbfgs: iterations over which the relative decrease is measured for --tol


def _coerce_classes(df, label_col, given):
    """--classes arrive as strings; cast them to the label column's type."""
    from pyspark.sql import types as T

    typ = df.schema[label_col].dataType
    try:
        if isinstance(typ, T.IntegralType):
            values = [int(v) for v in given]
        elif isinstance(typ, (T.FloatType, T.DoubleType, T.DecimalType)):
            values = [float(v) for v in given]
        elif isinstance(typ, T.BooleanType):
            values = [v if isinstance(v, bool) else str(v).lower() == "true" for v in given]
        else:
            values = [str(v) for v in given]
    except ValueError:
        raise InputError(f"--classes {given} do not match the type of column '{label_col}' ({typ.simpleString()})") from None
    if len(set(values)) != len(values):
        raise InputError(f"--classes {given} has duplicates")
    return sorted(values)


def _class_weights(cfg: TrainConfig, summary) -> np.ndarray | None:
    cw = cfg.class_weight
    if cw is None:
        return None
    n_classes = len(summary.classes)
    if cw == "balanced":
        counts = summary.class_counts.astype(np.float64)
        # scikit-learn's rule n / (C · n_c); a class absent from the data gets weight 0
        return np.where(counts > 0, summary.n_rows / (n_classes * np.maximum(counts, 1)), 0.0)
    weights = np.ones(n_classes)
    lookup = {str(c): i for i, c in enumerate(summary.classes)}
    for label, value in cw.items():
        if str(label) not in lookup:
            raise InputError(f"class_weight names label {label!r}, which is not one of the classes {summary.classes}")
        weights[lookup[str(label)]] = float(value)
    return weights


def _initial_model(cfg: TrainConfig, classes, n_features):
    """(coef, intercept) to start from: zeros, or --init-model (ours or MLlib's: model_io.load_any_model)."""
    if not cfg.init_model:
        return np.zeros((len(classes), n_features)), np.zeros(len(classes))
    from .model_io import load_any_model

    init = load_any_model(cfg.init_model, classes=classes, mllib_classes=cfg.init_model_classes, n_features=n_features)
    return init.coef, init.intercept


def _fingerprint_options(cfg: TrainConfig, summary) -> str:
    skip = {"model_dir", "overwrite", "max_iter", "checkpoint_dir", "checkpoint_every", "write_mllib",
            "fail_first_attempt_dir", "patience"}
    options = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in skip}
    options["data"] = summary.to_dict()
    return fingerprint(options)


class _Objective:
    """θ → (J, ∇_θ J) over the distributed data (or a minibatch of it), with the last result kept."""

    def __init__(self, dist: DistributedLoss, precond: Preconditioner, l2, l2_weights, seed):
        self.dist, self.precond, self.l2, self.l2_weights, self.seed = dist, precond, l2, l2_weights, seed
        self.passes = 0
        self.rows = 0
        self.last_grad_norm = float("nan")

    def __call__(self, theta, iteration=0, batch_fraction=1.0):
        coef, intercept = self.precond.to_model(theta)
        result = self.dist(coef, intercept, iteration=iteration, batch_fraction=batch_fraction, seed=self.seed)
        self.passes += 1
        self.rows += result.n_rows
        loss, grad_coef = add_l2(result.loss, result.grad_coef, coef, self.l2, self.l2_weights)
        grad_intercept = result.grad_intercept if self.precond.fit_intercept else np.zeros_like(result.grad_intercept)
        self.last_grad_norm = float(math.sqrt(np.vdot(grad_coef, grad_coef) + np.vdot(grad_intercept, grad_intercept)))
        return float(loss), self.precond.gradient(grad_coef, grad_intercept)


def fit_dataframe(spark, cfg: TrainConfig, df=None, validation_df=None, write=True) -> SoftmaxModel:
    """Train on ``df`` (or ``cfg.input``); write ``cfg.model_dir`` when ``write``. Returns the model."""
    from .storage import check_reachable, check_writable

    if write and cfg.model_dir:
        check_writable(cfg.model_dir, cfg.overwrite, "model directory", spark=spark)
    check_reachable(cfg.checkpoint_dir, "--checkpoint-dir", spark)
    check_reachable(cfg.init_model, "--init-model", spark)
    spec = cfg.feature_spec
    # Parquet read by path: the tasks may read its row groups directly (``ingest``'s fast path)
    files = val_files = None
    if df is None:
        df = read_parquet(spark, cfg.input)
        files = sorted(df.inputFiles())  # listing order decides the partitions (and minibatches)
    check_columns(df, spec, cfg.label_col, cfg.weight_col)
    if cfg.validation_input and validation_df is None:
        validation_df = read_parquet(spark, cfg.validation_input)
        val_files = sorted(validation_df.inputFiles())
        check_columns(validation_df, spec, cfg.label_col, cfg.weight_col)
    if cfg.validation_fraction:
        df, validation_df = df.randomSplit([1.0 - cfg.validation_fraction, cfg.validation_fraction], seed=cfg.seed)
        files = None

    classes = _coerce_classes(df, cfg.label_col, cfg.classes) if cfg.classes else discover_classes(df, cfg.label_col)
    if len(classes) == 0:
        raise InputError(f"the input has 0 labelled rows in column '{cfg.label_col}'; expected at least one")
    if len(classes) < 2:
        raise InputError(f"column '{cfg.label_col}' holds a single class {classes}; expected at least 2")

    n_partitions = cfg.num_partitions or spark.sparkContext.defaultParallelism
    t0 = time.perf_counter()
    # the ingested data sets by name, so a rebuild can replace one in place
    data = {"train": ingest(df, spec, cfg.label_col, classes, cfg.weight_col, cfg.dtype, n_partitions, files=files)}
    sources = {"train": (df, files, None)}
    try:
        summary = data["train"].summary
        if cfg.weight_col and summary.weight_sum <= 0:
            raise InputError(f"column '{cfg.weight_col}': every sample weight is 0")
        if validation_df is not None:
            sources["validation"] = (validation_df, val_files, summary.n_features)
            data["validation"] = ingest(validation_df, spec, cfg.label_col, classes, cfg.weight_col,
                                        cfg.dtype, n_partitions, n_features=summary.n_features, files=val_files)
        ingest_seconds = time.perf_counter() - t0
        print(f"softmax_spark: ingested {summary.n_rows} rows × {summary.n_features} features, "
              f"{len(classes)} classes, {summary.n_partitions} partitions from {data['train'].source} "
              f"in {ingest_seconds:.2f} s", flush=True)
        cached = summary.n_rows * (summary.n_features * np.dtype(cfg.dtype).itemsize + 4 + (8 if cfg.weight_col else 0))
        print(f"softmax_spark: cached_bytes={cached} (executor-local block files)", flush=True)

        def rebuilder(name):
            def rebuild():
                # a pass found block files missing that its tasks could not rewrite (rows that
                # came through Spark): ingest again from the same DataFrame — same partitions, same sums
                log.warning("%s block files missing on some executor; rebuilding them", name)
                frame, frame_files, width = sources[name]
                data[name].release()
                data[name] = ingest(frame, spec, cfg.label_col, classes, cfg.weight_col, cfg.dtype,
                                    n_partitions, n_features=width, files=frame_files)
                return data[name].blocks

            return rebuild

        model = _optimize(cfg, data["train"], data.get("validation"), classes, ingest_seconds,
                          rebuilder("train"), rebuilder("validation"))
    finally:
        for ingested in data.values():
            ingested.release()
    if write and cfg.model_dir:
        _write(model, cfg)
    return model


def _write(model: SoftmaxModel, cfg: TrainConfig) -> None:
    from .model_io import save_model

    extra = None
    if cfg.write_mllib:
        from .mllib_io import write_mllib_model

        extra = lambda tmp: write_mllib_model(model, os.path.join(tmp, "mllib"))  # noqa: E731
    save_model(model, cfg.model_dir, overwrite=cfg.overwrite, extra_writer=extra)
    log.info("model written to %s", cfg.model_dir)


def _optimize(cfg: TrainConfig, data, val_data, classes, ingest_seconds, rebuild=None,
              rebuild_validation=None) -> SoftmaxModel:
    summary = data.summary
    n_classes, n_features = len(classes), summary.n_features
    fit_intercept = cfg.fit_intercept
    class_weight = _class_weights(cfg, summary)
    # MLlib's standardization uses the unbiased sample std
    n = max(summary.n_rows, 2)
    col_std = np.sqrt(summary.col_var * n / (n - 1))
    l2_weights = l2_feature_weights(n_features, cfg.standardize, col_std)
    second_moment = summary.col_var if fit_intercept else summary.col_var + summary.col_mean**2
    precond = Preconditioner(n_classes, n_features, summary.col_mean, second_moment, cfg.l2, l2_weights,
                             fit_intercept, cfg.parametrization == "reference", enabled=cfg.precondition)

    dist = DistributedLoss(data.blocks, n_classes, n_features, fit_intercept, cfg.aggregation_depth,
                           rebuild=rebuild, fail_marker_dir=cfg.fail_first_attempt_dir, class_weight=class_weight)
    objective = _Objective(dist, precond, cfg.l2, l2_weights, cfg.seed)
    val_loss_fn = None
    if val_data is not None:
        val_dist = DistributedLoss(val_data.blocks, n_classes, n_features, fit_intercept,
                                   cfg.aggregation_depth, rebuild=rebuild_validation, label="validation",
                                   class_weight=class_weight)

        def val_loss_fn(theta):
            coef, intercept = precond.to_model(theta)
            return float(val_dist(coef, intercept).loss)

    coef0, intercept0 = _initial_model(cfg, classes, n_features)
    theta = precond.from_model(coef0, intercept0)
    run_fp = _fingerprint_options(cfg, summary)
    start_iteration, history, restored = 0, [], None
    if cfg.checkpoint_dir:
        restored = latest_checkpoint(cfg.checkpoint_dir, run_fp)
        if restored is not None:
            start_iteration, history = restored.iteration, restored.history
            theta = restored.arrays["theta"]
            log.info("resuming from iteration %d (%s)", start_iteration, restored.path)
            print(f"softmax_spark: resuming from iteration {start_iteration}", flush=True)

    loop = _Loop(cfg, objective, precond, val_loss_fn, history, run_fp, summary)
    if cfg.optimizer == "lbfgs":
        theta, reason = loop.run_lbfgs(theta, start_iteration, restored)
    else:
        theta, reason = loop.run_sgd(theta, start_iteration, restored, summary, l2_weights)
    if cfg.checkpoint_dir:  # a converged run's checkpoints go; one stopped by max_iter stays resumable
        finish_run(cfg.checkpoint_dir, run_fp, converged=not reason.startswith("max_iter"))
    coef, intercept = precond.to_model(theta)
    metadata = {
        "l2": cfg.l2,
        "fit_intercept": fit_intercept,
        "options": dataclasses.asdict(cfg),
        "data_summary": {
            **summary.to_dict(),
            "ingest_seconds": ingest_seconds,
            "class_weight": None if class_weight is None else class_weight.tolist(),
        },
        "stop_reason": reason,
    }
    metadata["options"]["stop_reason"] = reason
    return SoftmaxModel(coef, intercept, classes, history=loop.history, metadata=metadata)


class _Loop:
    """Shared per-iteration book-keeping: history, log line, validation, checkpoints, stopping."""

    def __init__(self, cfg, objective, precond, val_loss_fn, history, run_fp, summary):
        self.cfg, self.objective, self.precond = cfg, objective, precond
        self.val_loss_fn = val_loss_fn
        self.history = list(history)
        self.run_fp = run_fp
        self.n_rows = summary.n_rows
        self.best_val = min((h["validation_loss"] for h in history if h.get("validation_loss") is not None),
                            default=float("inf"))
        self.best_theta = None
        self.since_best = 0

    def record(self, iteration, theta, f, grad_theta, seconds, rows, passes, extra):
        """Append the history record; returns a stop reason from validation, or None."""
        entry = {
            "iteration": iteration,
            "objective": f,
            "grad_norm": self.objective.last_grad_norm,
            "seconds": seconds,
            "passes": passes,
            "rows_per_second": rows / seconds if seconds > 0 else None,
            **extra,
        }
        reason = None
        if self.val_loss_fn is not None:
            val = self.val_loss_fn(theta)
            entry["validation_loss"] = val
            if val < self.best_val:
                self.best_val, self.best_theta, self.since_best = val, theta.copy(), 0
            else:
                self.since_best += 1
                if self.since_best >= self.cfg.patience:
                    reason = f"early stopping: validation loss did not improve for {self.cfg.patience} iterations"
        self.history.append(entry)
        parts = [f"iter {iteration:5d}", f"objective {f:.10g}", f"grad_norm {entry['grad_norm']:.3e}"]
        if "learning_rate" in extra:
            parts.append(f"lr {extra['learning_rate']:.3e}")
        if "step" in extra:
            parts.append(f"step {extra['step']:.3e}")
        if "validation_loss" in entry:
            parts.append(f"val_loss {entry['validation_loss']:.8g}")
        parts.append(f"{seconds:.3f} s")
        if entry["rows_per_second"]:
            parts.append(f"{entry['rows_per_second']:.3g} rows/s")
        print("softmax_spark: " + "  ".join(parts), flush=True)
        return reason

    def checkpoint(self, iteration, theta, arrays, scalars):
        if self.cfg.checkpoint_dir and iteration % self.cfg.checkpoint_every == 0:
            arrays = {"theta": theta, **arrays}
            if self.best_theta is not None:
                arrays["best_theta"] = self.best_theta
            scalars = {**scalars, "best_val": self.best_val, "since_best": self.since_best}
            save_checkpoint(self.cfg.checkpoint_dir, iteration, arrays, scalars, self.history, self.run_fp)

    def restore_validation(self, restored):
        if restored is not None:
            if "best_theta" in restored.arrays:
                self.best_theta = restored.arrays["best_theta"]
            self.best_val = float(restored.scalars.get("best_val", self.best_val))
            self.since_best = int(restored.scalars.get("since_best", 0))

    def final(self, theta, reason):
        if self.best_theta is not None and self.val_loss_fn is not None:
            return self.best_theta, reason
        return theta, reason

    @staticmethod
    def _check_finite(f, iteration, hint):
        if not math.isfinite(f):
            raise DivergenceError(f"the objective became {f} at iteration {iteration}; {hint}")

    # -- L-BFGS -------------------------------------------------------------------------------
    def run_lbfgs(self, theta, start, restored):
        cfg = self.cfg
        self.restore_validation(restored)
        if restored is not None and "lbfgs_s" in restored.arrays:
            state = LbfgsState(restored.arrays["lbfgs_s"], restored.arrays["lbfgs_y"],
                               float(restored.scalars["objective"]), restored.arrays["lbfgs_grad"],
                               float(restored.scalars["prev_objective"]))
        else:
            f0, g0 = self.objective(theta)
            self._check_finite(f0, start, "check the input scale or the initial model")
            state = lbfgs_init(f0, g0)
        reason = f"max_iter ({cfg.max_iter}) reached"
        for iteration in range(start + 1, cfg.max_iter + 1):
            t0, passes0, rows0 = time.perf_counter(), self.objective.passes, self.objective.rows
            if float(np.max(np.abs(state.grad), initial=0.0)) <= cfg.gtol:
                reason = f"gradient below gtol ({cfg.gtol})"
                break
            evaluate = lambda x: self.objective(x, iteration)  # noqa: E731
            theta, state, step = lbfgs_step(evaluate, theta, state, cfg.lbfgs_memory)
            if step == 0.0:
                reason = "line search made no progress (numerical optimum reached)"
                break
            self._check_finite(state.objective, iteration, "check the input for extreme values")
            seconds = time.perf_counter() - t0
            stop = self.record(iteration, theta, state.objective, state.grad, seconds,
                               self.objective.rows - rows0, self.objective.passes - passes0, {"step": step})
            self.checkpoint(iteration, theta,
                            {"lbfgs_s": state.s, "lbfgs_y": state.y, "lbfgs_grad": state.grad},
                            {"objective": state.objective, "prev_objective": state.prev_objective})
            if stop:
                reason = stop
                break
            # J − J* ≈ ½ gᵀ H⁻¹ g, the L-BFGS model's remaining decrease; it underestimates
            # while the model has seen few directions, so the actual decrease over the last
            # TOL_WINDOW iterations must be small too
            if len(self.history) > TOL_WINDOW:
                past = self.history[-TOL_WINDOW - 1]["objective"]
                scale = max(abs(past), abs(state.objective), 1.0)
                rel = (past - state.objective) / scale
                predicted = 0.5 * max(0.0, -float(state.grad @ two_loop_direction(state.grad, state.s, state.y))) / scale
                if rel <= cfg.tol and predicted <= cfg.tol:
                    reason = (f"relative decrease over {TOL_WINDOW} iterations {rel:.3e} and predicted "
                              f"remaining decrease {predicted:.3e} ≤ tol ({cfg.tol})")
                    break
        print(f"softmax_spark: stopped: {reason}", flush=True)
        return self.final(theta, reason)

    # -- SGD ----------------------------------------------------------------------------------
    def run_sgd(self, theta, start, restored, summary, l2_weights):
        cfg = self.cfg
        self.restore_validation(restored)
        lr = cfg.learning_rate
        if lr is None:
            bound = self.precond.curvature_bound(summary.covariance, summary.col_mean, summary.col_var,
                                                 cfg.l2, l2_weights)
            lr = 1.0 / bound
            print(f"softmax_spark: learning rate 1/L = {lr:.4g} (curvature bound L = {bound:.4g})", flush=True)
        schedule = make_schedule(cfg.schedule, lr, cfg.power_t, cfg.decay_rate, cfg.decay_every)
        opt = sgd(schedule, cfg.momentum, cfg.nesterov)
        state = opt.init(theta)
        avg = polyak_average_init(theta)
        best_obj, no_improve = float("inf"), 0
        if restored is not None:
            state = SgdState(int(restored.scalars["step"]), restored.arrays["velocity"])
            avg = AverageState(int(restored.scalars["avg_count"]), restored.arrays["avg_mean"])
            best_obj = float(restored.scalars["best_obj"])
            no_improve = int(restored.scalars["no_improve"])
        reason = f"max_iter ({cfg.max_iter}) reached"
        for iteration in range(start + 1, cfg.max_iter + 1):
            t0, rows0 = time.perf_counter(), self.objective.rows
            f, grad = self.objective(theta, iteration, cfg.batch_fraction)
            self._check_finite(f, iteration, f"the learning rate {schedule(state.step):.3g} is probably too large; "
                                             "try a smaller --learning-rate")
            step_lr = schedule(state.step)
            updates, state = opt.update(grad, state, theta)
            theta = theta + updates
            if not np.all(np.isfinite(theta)):
                raise DivergenceError(f"the parameters became non-finite at iteration {iteration}; "
                                      f"the learning rate {step_lr:.3g} is too large; try a smaller --learning-rate")
            if cfg.average:
                avg = polyak_average_update(theta, avg)
            current = avg.mean if cfg.average else theta
            seconds = time.perf_counter() - t0
            stop = self.record(iteration, current, f, grad, seconds, self.objective.rows - rows0, 1,
                               {"learning_rate": step_lr})
            improved = not math.isfinite(best_obj) or f < best_obj - cfg.tol * max(abs(best_obj), 1.0)
            if improved:
                best_obj, no_improve = min(f, best_obj), 0
            else:
                no_improve += 1
            self.checkpoint(iteration, theta, {"velocity": state.velocity, "avg_mean": avg.mean},
                            {"step": state.step, "avg_count": avg.count, "best_obj": best_obj,
                             "no_improve": no_improve})
            if stop:
                reason = stop
                break
            if cfg.tol > 0 and no_improve >= cfg.n_iter_no_change:
                reason = f"objective did not improve by tol ({cfg.tol}) for {cfg.n_iter_no_change} iterations"
                break
        print(f"softmax_spark: stopped: {reason}", flush=True)
        return self.final(avg.mean if cfg.average else theta, reason)


def train(spark, cfg: TrainConfig) -> SoftmaxModel:
    """The job's entry: validate the config, train on ``cfg.input``, write ``cfg.model_dir``."""
    cfg.validate()
    return fit_dataframe(spark, cfg)
