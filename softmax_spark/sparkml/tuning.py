"""``SoftmaxRegressionCV``: choose regParam by K-fold cross-validation in one job (Spark ML Estimator).

    from softmax_spark.ml import SoftmaxRegressionCV
    cv = SoftmaxRegressionCV(regParams=[1e-1, 1e-2, 1e-3], numFolds=5, foldCol="fold", metric="logLoss")
    model = cv.fit(df)
    model.bestRegParam, model.cvMetrics, model.stdMetrics, model.path   # the choice and the path table
    model.bestModel                    # a SoftmaxRegressionModel: the chosen regParam refit on all rows
    model.transform(df)                # = model.bestModel.transform(df)

What it computes is what ``CrossValidator(SoftmaxRegression(...), ParamGridBuilder().addGrid(regParam,
grid), MulticlassClassificationEvaluator(metricName=metric), numFolds, foldCol)`` computes —
``cvMetrics`` are its ``avgMetrics`` (the mean over folds of each fold model's validation metric),
``stdMetrics`` its ``stdMetrics`` (numpy std over folds), the choice its best (first best in the
given order) — but from one ingest, with every distributed pass computing the sums of all K folds
at once and the fold models warm-started along the path, strongest penalty first (``softmax_spark.core.cv``
has the design and the memory and pass costs).

Params (MLlib / scikit-learn names):

- ``regParams``: the grid (MLlib's regParam units: mean log-loss + ½·regParam·‖W‖²), any order;
  or, unset, ``numRegParams`` (20) values from regParam_max down to regParam_max·``regParamRatio``
  (1e-4), log-spaced; regParam_max = max_cj |∂/∂w_cj of the mean log-loss at W = 0, b = log
  priors| / max(α, 1e-3) (glmnet's start of an α = 0 path; ``cv.regparam_max``);
- ``elasticNetParams``: the α grid ([0.0], pure L2, by default), values in [0, 1]: the penalty is
  MLlib's regParam·(α‖W‖₁ + (1−α)/2‖W‖²); each α has its own path (the regParams given, or
  ``numRegParams`` values from that α's regParam_max — for α > 0 the exact point where every
  coefficient is zero, glmnet's λ_max), warm-started strongest first; the L1 points run
  prox-newton (where K fold Hessians fit) or OWL-QN, as a single ``SoftmaxRegression`` fit picks;
  ``bestElasticNetParam`` is the chosen α;
- ``numFolds`` (3, as CrossValidator); ``foldCol``: an integer column in [0, numFolds) (as
  CrossValidator's ``foldCol``); unset: fold = pmod(xxhash64(seed, features, label[, weight]),
  numFolds) — a seeded hash of each row, so the same rows get the same folds on any partitioning;
- ``metric``: logLoss (default), accuracy or f1 (MulticlassClassificationEvaluator's weighted F1);
- ``oneStandardErrorRule`` (False): choose the largest regParam whose mean metric is within one
  standard error (std over folds (ddof 1)/√K, glmnet's ``cvsd``) of the best (glmnet's lambda.1se);
- the single fit's: featuresCol, labelCol, weightCol, predictionCol, probabilityCol,
  rawPredictionCol, standardization, fitIntercept, maxIter, solver (auto/newton/lbfgs), tol —
  unset (the default), each fold model runs to its solver's own exact stopping rule (Newton:
  decrement ½gᵀH⁻¹g/max(|J|,1) ≤ 1e-16; L-BFGS 1e-9), not MLlib's 1e-6: the metrics compared
  along the path are then those of the optima (at 1e-6, a Newton fit on the acceptance data stops
  up to 5e-5 away in validation log-loss);
  family, labelIndexing, aggregationDepth, numPartitions, residentTasks, seed.

Each fold model is what ``SoftmaxRegression`` with the same Params fits on that fold's training rows
(the same solver, stopping rule and penalty; ``tests/test_cv.py`` checks 1e-6 in probabilities);
``bestModel`` is ``SoftmaxRegression(regParam=bestRegParam)`` fitted on all rows, warm-started from
the mean of the fold models at that regParam (scikit-learn ``LogisticRegressionCV``'s refit).
Runs on a classic SparkSession (the passes are ``DistributedLoss``'s); not on Spark Connect.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
from pyspark.ml.base import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReader, MLReadable, MLReader, MLWritable, MLWriter

from softmax_spark.core import cv
from softmax_spark.core.errors import InputError
from softmax_spark.core.model_record import COLUMNS, columns_record
from softmax_spark.sparkml.params import _SharedParams, param_names
from softmax_spark.sparkml.classification import SoftmaxRegression
from softmax_spark.spark.fit_output import quiet_fit
from softmax_spark.spark.shipping import ensure_workers, workers_python
from softmax_spark.spark.backend import backend_for, default_parallelism
from softmax_spark.spark.distributed import DistributedLoss
from softmax_spark.core.features import FeatureSpec
from softmax_spark.spark.ingest import ingest
from softmax_spark.sparkml.labels import resolve_classes
from softmax_spark.sparkml.params import FAMILIES
from softmax_spark.solvers import resolve_optimizer
from softmax_spark.fit.loop import TrainingLoop
from softmax_spark.sparkml.model import SoftmaxRegressionModel
from softmax_spark.sparkml.summary import SoftmaxRegressionTrainingSummary
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.solvers import make_solver
from softmax_spark.sparkml.cv_io import CVEstimatorWriter, CVModelReader, CVModelWriter

__all__ = ["SoftmaxRegressionCV", "SoftmaxRegressionCVModel"]

log = logging.getLogger("softmax_spark")

# the single-fit Params passed on to SoftmaxRegression (its names): those of the shared mixin
_SHARED = tuple(sorted(param_names(_SharedParams)))
CV_SOLVERS = ("auto", "newton", "lbfgs")


class _SoftmaxRegressionCVParams(_SharedParams):
    """The single fit's Params (``params._SharedParams``: the same declarations, docs and defaults as
    ``SoftmaxRegression``'s, tol unset) and the path's own."""

    regParams = Param(Params._dummy(), "regParams", "the regParam grid (MLlib's units), any order; unset: "
                      "numRegParams log-spaced values from regParam_max", typeConverter=TypeConverters.toListFloat)
    numRegParams = Param(Params._dummy(), "numRegParams", "grid size when regParams is unset",
                         typeConverter=TypeConverters.toInt)
    regParamRatio = Param(Params._dummy(), "regParamRatio", "smallest / largest regParam of the default grid",
                          typeConverter=TypeConverters.toFloat)
    elasticNetParams = Param(Params._dummy(), "elasticNetParams", "the α grid (MLlib's elasticNetParam values in [0, 1]); each α its own regParam path",
                             typeConverter=TypeConverters.toListFloat)
    numFolds = Param(Params._dummy(), "numFolds", "number of folds K ≥ 2", typeConverter=TypeConverters.toInt)
    foldCol = Param(Params._dummy(), "foldCol", "integer column in [0, numFolds) giving each row's fold; "
                    "empty: a seeded hash of the row", typeConverter=TypeConverters.toString)
    metric = Param(Params._dummy(), "metric", "validation metric: logLoss, accuracy or f1",
                   typeConverter=TypeConverters.toString)
    oneStandardErrorRule = Param(Params._dummy(), "oneStandardErrorRule",
                                 "choose the largest regParam within one standard error of the best mean metric",
                                 typeConverter=TypeConverters.toBoolean)

    def __init__(self, *args):
        super().__init__(*args)
        self._setDefault(numRegParams=20, regParamRatio=1e-4, elasticNetParams=[0.0], numFolds=3, foldCol="",
                         metric="logLoss", oneStandardErrorRule=False)


class SoftmaxRegressionCV(Estimator, _SoftmaxRegressionCVParams, MLWritable, MLReadable):
    """Cross-validated regParam path (see the module docstring). Raises ``InputError`` for bad
    Params or data (one line naming the Param or column)."""

    def __init__(self, **kwargs):
        super().__init__()
        known = {p.name for p in self.params}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown Params {unknown}; known: {sorted(known)}")
        self._set(**kwargs)

    def setParams(self, **kwargs):
        return self._set(**kwargs)

    def write(self) -> MLWriter:
        """The Params, in Spark ML's layout (``sparkml.cv_io``)."""
        return CVEstimatorWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return DefaultParamsReader(cls)

    def _check_params(self) -> None:
        K = self.getOrDefault(self.numFolds)
        if K < 2:
            raise InputError(f"numFolds must be ≥ 2, got {K}")
        metric = self.getOrDefault(self.metric)
        if metric not in cv.METRICS:
            raise InputError(f"metric must be one of {', '.join(cv.METRICS)}, got {metric!r}")
        alphas = self.getOrDefault(self.elasticNetParams)
        if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
            raise InputError(f"elasticNetParams must be a non-empty list of values in [0, 1], got {list(alphas)}")
        if self.isSet(self.regParams):
            grid = self.getOrDefault(self.regParams)
            if not grid or any(not (r >= 0 and np.isfinite(r)) for r in grid):
                raise InputError(f"regParams must be a non-empty list of finite values ≥ 0, got {grid}")
        elif self.getOrDefault(self.numRegParams) < 1:
            raise InputError(f"numRegParams must be ≥ 1, got {self.getOrDefault(self.numRegParams)}")
        ratio = self.getOrDefault(self.regParamRatio)
        if not 0 < ratio <= 1:
            raise InputError(f"regParamRatio must be in (0, 1], got {ratio}")
        if self.getSolver() not in CV_SOLVERS:
            raise InputError(f"solver must be one of {', '.join(CV_SOLVERS)} for SoftmaxRegressionCV, "
                             f"got {self.getSolver()!r}")

    def _estimator(self, reg_param: float):
        """The ``SoftmaxRegression`` a fold fit equals (the shared Params, ``reg_param``)."""
        est = SoftmaxRegression(regParam=float(reg_param))
        for name in _SHARED:
            if self.isSet(getattr(self, name)):
                est._set(**{name: self.getOrDefault(getattr(self, name))})
        return est

    def _fold_column(self, dataset):
        """(fold Column, description) — ``foldCol`` cast to int, or the seeded row hash."""
        from pyspark.sql import functions as F

        K = self.getOrDefault(self.numFolds)
        fold_col = self.getOrDefault(self.foldCol)
        if fold_col:
            if fold_col not in dataset.columns:
                raise InputError(f"foldCol '{fold_col}' not found; the input has columns: {', '.join(dataset.columns)}")
            lo, hi, nulls = dataset.agg(F.min(fold_col), F.max(fold_col),
                                        F.sum(F.col(fold_col).isNull().cast("int"))).first()
            if nulls or lo is None or lo < 0 or hi >= K or float(lo) != int(lo) or float(hi) != int(hi):
                raise InputError(f"foldCol '{fold_col}': values from {lo} to {hi} ({nulls or 0} nulls); expected "
                                 f"integers in [0, {K}) (numFolds = {K})")
            return F.col(fold_col).cast("int"), f"column '{fold_col}'"
        cols = [self.getFeaturesCol(), self.getLabelCol()]
        if self._value(self.weightCol):
            cols.append(self.getOrDefault(self.weightCol))
        expr = F.pmod(F.xxhash64(F.lit(int(self.getSeed())), *[F.col(c) for c in cols]), F.lit(K)).cast("int")
        return expr, f"pmod(xxhash64(seed={self.getSeed()}, {', '.join(cols)}), {K})"

    def _fit(self, dataset) -> "SoftmaxRegressionCVModel":
        """As ``SoftmaxRegression._fit``: the package shipped to workers that lack it, progress
        lines at DEBUG (``fit_output``), then ``_fit_cv``."""
        ensure_workers(dataset.sparkSession)
        with quiet_fit(False), workers_python(dataset.sparkSession):
            return self._fit_cv(dataset)

    def _fit_cv(self, dataset) -> "SoftmaxRegressionCVModel":
        from pyspark.sql import functions as F
        from pyspark.sql import types as T


        t_start = time.perf_counter()
        self._check_params()
        if not backend_for(dataset).has_rdd:  # its fold sums run as RDD passes
            raise InputError("SoftmaxRegressionCV runs on a classic SparkSession; on Spark Connect use "
                             "CrossValidator over SoftmaxRegression")
        est0 = self._estimator(0.0)
        est0._check_params()
        label_col = self.getLabelCol()
        classes, _ = resolve_classes(dataset, label_col, self.getOrDefault(self.labelIndexing))
        C = len(classes)
        if C < 2:
            raise InputError(f"column '{label_col}' holds a single class {classes}; expected at least 2")
        family = self.getOrDefault(self.family)
        if family not in FAMILIES:
            raise InputError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
        if family == "binomial" and C > 2:
            raise InputError(f"family='binomial' supports 1 or 2 classes, column '{label_col}' has {C}")
        binomial = family == "binomial" or (family == "auto" and C <= 2)
        to_lambda = (lambda r: r) if binomial else (lambda r: r / 2.0)  # as SoftmaxRegression._fit
        K = self.getOrDefault(self.numFolds)
        metric = self.getOrDefault(self.metric)

        # -- one ingest: the label column carries fold·C + class --------------------------------
        fold, fold_source = self._fold_column(dataset)
        numeric = isinstance(dataset.schema[label_col].dataType, T.NumericType)
        lits = [F.lit(float(c)) for c in classes] if numeric else [F.lit(c) for c in classes]
        label = F.col(label_col).cast("double") if numeric else F.col(label_col)
        position = F.array_position(F.array(*lits), label) - 1
        code = F.when(position >= 0, fold * C + position).cast("double")
        cols = [self.getFeaturesCol()] + ([self.getOrDefault(self.weightCol)] if self._value(self.weightCol) else [])
        frame = dataset.select(*cols, code.alias(label_col))
        cfg = est0._train_config(classes, 0.0, None)
        if not self.isSet(self.tol):  # unset: the solver's own exact stopping rule (Newton 1e-16, L-BFGS 1e-9)
            cfg = dataclasses.replace(cfg, tol=None)
        spark = dataset.sparkSession
        n_partitions = cfg.num_partitions or default_parallelism(spark)
        data = ingest(frame, FeatureSpec(self.getFeaturesCol()), label_col, [float(i) for i in range(K * C)],
                      cfg.weight_col, cfg.dtype, n_partitions)
        try:
            return self._fit_ingested(data, classes, C, K, binomial, to_lambda, metric, cfg, fold_source, t_start,
                                      DistributedLoss, resolve_optimizer)
        finally:
            data.release()

    def _fit_ingested(self, data, classes, C, K, binomial, to_lambda, metric, cfg, fold_source, t_start,
                      DistributedLoss, resolve_optimizer):

        summary = data.summary
        D = summary.n_features
        dist = DistributedLoss(data, C, D, cfg.fit_intercept, cfg.aggregation_depth, label="cv",
                               resident=cfg.resident_tasks)

        def run_pass(slots, payloads):
            return dist.run(cv.SlotsKernel(C, slots), payloads, label="cv")

        lockstep = cv.LockstepPasses(run_pass)
        shift = np.asarray(summary.col_mean, dtype=np.float64)
        macc = run_pass([(cv.MomentsKernel(K, C), "raw", -1)], [shift]).accs[0]
        lockstep.passes += 1
        empty = [k for k in range(K) if macc.wsum[k].sum() <= 0]
        if empty:
            raise InputError(f"fold(s) {empty} ({fold_source}) have no rows (or only zero-weight rows)")
        train_moments = [cv.FoldMoments.of(macc, shift, k, exclude=True) for k in range(K)]
        all_moments = cv.FoldMoments.of(macc, shift, None, exclude=False)

        # the grid: for each α, the regParams (given, or log-spaced from that α's regParam_max); the
        # points in the order α by α, each α's regParams in their order
        grid, alphas = [], []
        for a in (float(v) for v in self.getOrDefault(self.elasticNetParams)):
            if self.isSet(self.regParams):
                rs = [float(r) for r in self.getOrDefault(self.regParams)]
            else:
                rs = cv.regparam_grid(cv.regparam_max(all_moments, cfg.standardize, a),
                                      self.getOrDefault(self.numRegParams), self.getOrDefault(self.regParamRatio))
            grid += rs
            alphas += [a] * len(rs)
        l1_cfg = dataclasses.replace(cfg, l1=1.0)  # any L1 part: the proximal solvers' rule

        # -- the solver: the single fit's rule, and Newton only where K Hessians fit ---------------
        n_train = int(np.mean([m.rows for m in train_moments]))
        solver_name, why = resolve_optimizer(cfg, n_train, C, D, getattr(summary, "density", 1.0) or 1.0)
        P = C * (D + (1 if cfg.fit_intercept else 0))
        if solver_name == "newton" and K * P * P > cv.FOLD_HESSIAN_MAX_DOUBLES:
            solver_name, why = "lbfgs", (f"K·P² = {K}·{P}² > {cv.FOLD_HESSIAN_MAX_DOUBLES} doubles: "
                                         "no per-fold Hessians; L-BFGS")
        if solver_name not in ("newton", "lbfgs"):
            solver_name = "lbfgs"
        l1_solver = None
        if any(a > 0 for a in alphas):  # the L1 points: prox-newton (fold Hessians permitting) or OWL-QN
            l1_solver, l1_why = resolve_optimizer(l1_cfg, n_train, C, D, getattr(summary, "density", 1.0) or 1.0)
            if l1_solver == "prox-newton" and K * P * P > cv.FOLD_HESSIAN_MAX_DOUBLES:
                l1_solver, l1_why = "owlqn", f"K·P² = {K}·{P}² > {cv.FOLD_HESSIAN_MAX_DOUBLES} doubles: OWL-QN"
            why = f"{why}; with an L1 part {l1_solver} ({l1_why})"
        log.info("cv: %d folds (%s), %d regParams, solver %s (%s)", K, fold_source, len(grid), solver_name, why)

        # -- the path: strongest penalty first, every fold warm-started from its previous model ---
        alpha_rank = {a: j for j, a in reversed(list(enumerate(alphas)))}  # α paths in their given order
        order = sorted(range(len(grid)), key=lambda i: (alpha_rank[alphas[i]], -grid[i], i))
        models = [(np.zeros((C, D)), np.zeros(C)) for _ in range(K)]
        fold_models: dict = {}
        iterations = np.zeros((len(grid), K), dtype=int)
        passes_at = np.zeros(len(grid), dtype=int)
        metric_accs: dict = {}
        pending_metric = None

        def fold_fit(problem, theta0):
            if problem.nonsmooth is not None:
                return lambda: TrainingLoop(make_solver(l1_cfg, l1_solver), problem, cfg.max_iter).run(theta0)
            return lambda: TrainingLoop(make_solver(cfg, solver_name), problem, cfg.max_iter).run(theta0)

        def penalties(i):  # (λ₂, λ₁) of point i, as SoftmaxRegression._fit_dataframe maps regParam and α
            return (1.0 - alphas[i]) * to_lambda(grid[i]), alphas[i] * grid[i]

        def model_of(problem, theta):  # (coef, intercept); coordinates the L1 part zeroed exactly zero
            coef, b = problem.to_model(theta)
            if problem.nonsmooth is not None:
                coef, b = problem.nonsmooth.snap(theta, coef, b)
            return coef, b

        previous_alpha = None
        for i in order:
            if alphas[i] != previous_alpha:  # a new α: its path starts from W = 0
                models = [(np.zeros((C, D)), np.zeros(C)) for _ in range(K)]
                previous_alpha = alphas[i]
            lam, l1 = penalties(i)
            problems = {("train", k): cv.build_fold_problem(lockstep, ("train", k), train_moments[k], C, lam,
                                                             cfg.standardize, cfg.fit_intercept,
                                                             cfg.parametrization == "reference", cfg.precondition,
                                                             cfg.seed, l1=l1) for k in range(K)}
            fits = {s: fold_fit(p, p.from_model(*models[s[1]])) for s, p in problems.items()}
            before = lockstep.passes
            results = lockstep.run(fits)
            if pending_metric is not None:  # the previous λ's metric rode on this λ's first pass
                metric_accs[pending_metric] = lockstep.take_rides()
            passes_at[i] = lockstep.passes - before
            for s, res in results.items():
                k = s[1]
                models[k] = model_of(problems[s], res.theta)
                iterations[i, k] = len(res.history)
            fold_models[i] = [(c.copy(), b.copy()) for c, b in models]
            for k in range(K):
                lockstep.add_ride(cv.MetricKernel(cfg.fit_intercept), ("valid", k), models[k])
            pending_metric = i
        metric_accs[pending_metric] = lockstep.take_rides()

        folds = np.array([[cv.metric_value(a, metric) for a in metric_accs[i]] for i in range(len(grid))])
        means = folds.mean(axis=1)
        stats = [cv.fold_std(folds[i]) for i in range(len(grid))]
        larger = cv.METRICS[metric]
        best = cv.best_index(means, larger)
        chosen = best
        if self.getOrDefault(self.oneStandardErrorRule):  # glmnet's lambda.1se along the best point's α path
            same = [i for i in range(len(grid)) if alphas[i] == alphas[best]]
            pick = cv.one_standard_error_index(means[same], [stats[i][1] for i in same], [grid[i] for i in same],
                                               larger)
            chosen = same[pick]
        path_passes = lockstep.passes

        # -- the refit on all rows at the chosen regParam, from the mean of its fold models --------
        lam, l1 = penalties(chosen)
        problem = cv.build_fold_problem(lockstep, ("all", -1), all_moments, C, lam, cfg.standardize,
                                        cfg.fit_intercept, cfg.parametrization == "reference", cfg.precondition,
                                        cfg.seed, l1=l1)
        coef0 = np.mean([c for c, _ in fold_models[chosen]], axis=0)
        b0 = np.mean([b for _, b in fold_models[chosen]], axis=0)
        refit = lockstep.run({("all", -1): fold_fit(problem, problem.from_model(coef0, b0))})[("all", -1)]
        refit_solver = solver_name if problem.nonsmooth is None else l1_solver
        for record in refit.history:
            record.setdefault("solver", refit_solver)
        coef, intercept = model_of(problem, refit.theta)
        path = [{"regParam": grid[i], "elasticNetParam": alphas[i], "metric": metric, "mean": float(means[i]),
                 "std": stats[i][0], "stdErr": stats[i][1], "foldMetrics": [float(v) for v in folds[i]],
                 "nonZeros": float(np.mean([np.count_nonzero(c) for c, _ in fold_models[i]])),
                 "iterations": int(iterations[i].max()), "foldIterations": [int(v) for v in iterations[i]],
                 "passes": int(passes_at[i])} for i in range(len(grid))]
        seconds = time.perf_counter() - t_start
        meta_cv = {"folds": K, "fold_source": fold_source, "metric": metric, "best_index": best,
                   "chosen_index": chosen, "one_standard_error_rule": bool(self.getOrDefault(self.oneStandardErrorRule)),
                   "solver": solver_name, "l1_solver": l1_solver, "elasticNetParams": sorted(set(alphas)),
                   "path_passes": int(path_passes), "passes": int(lockstep.passes),
                   "seconds": seconds, "path": path}
        metadata = {"l2": lam, "fit_intercept": cfg.fit_intercept, "stop_reason": refit.reason,
                    COLUMNS: columns_record(cfg.feature_spec, cfg.label_col, cfg.weight_col),
                    "solver": refit_solver, "passes": problem.passes, "penalty": problem.penalty.to_dict(),
                    "options": {**dataclasses.asdict(cfg), "l2": lam, "l1": l1, "stop_reason": refit.reason},
                    "cross_validation": meta_cv}
        if l1 > 0:
            metadata["l1"] = l1
        fitted = SoftmaxModel(coef, intercept, classes, history=refit.history, metadata=metadata)
        centred = fitted.centered()  # as SoftmaxRegression: with an L1 part only the intercepts are centred
        fitted = centred if l1 == 0 else fitted._with(fitted.coef, centred.intercept)
        est = self._estimator(grid[chosen])
        est._set(elasticNetParam=alphas[chosen])
        best_model = SoftmaxRegressionModel(fitted, binomial=binomial)
        est._copyValues(best_model)
        best_model._summary = SoftmaxRegressionTrainingSummary(refit.history, refit.reason)
        log.info("cv: regParam %.6g chosen (%s %.8g), %d passes in %.2f s", grid[chosen], metric, means[chosen],
                 lockstep.passes, seconds)
        model = SoftmaxRegressionCVModel(best_model, grid, [float(m) for m in means], [s[0] for s in stats], path,
                                         chosen, fold_models=fold_models, classes=classes)
        model._resetUid(self.uid)
        self._copyValues(model)
        return model


class SoftmaxRegressionCVModel(Model, _SoftmaxRegressionCVParams, MLWritable, MLReadable):
    """The cross-validated path and the refit model; ``transform`` delegates to ``bestModel``.

    Attributes: ``bestModel`` (SoftmaxRegressionModel), ``bestRegParam``, ``regParams`` (the grid, in
    the order given), ``cvMetrics`` (= ``avgMetrics``: mean validation metric per regParam, that
    order), ``stdMetrics`` (std over folds, numpy ddof 0, as CrossValidatorModel), ``path`` (the path
    table: one dict per regParam with regParam, elasticNetParam, mean, std, stdErr, foldMetrics,
    nonZeros (mean over the fold models), iterations (the slowest fold's), foldIterations, passes),
    ``foldModels`` (regParam index → K (coef (C, D), intercept (C,)) pairs).
    ``write()`` / ``load(path)``: Spark ML's layout, nothing pickled (``sparkml.cv_io``).
    """

    def __init__(self, bestModel=None, regParams=None, cvMetrics=None, stdMetrics=None, path=None, bestIndex=0,
                 fold_models=None, classes=None):
        super().__init__()
        self.bestModel = bestModel
        self.regParams = list(regParams or [])
        self.cvMetrics = list(cvMetrics or [])
        self.stdMetrics = list(stdMetrics or [])
        self.path = list(path or [])
        self.bestIndex = int(bestIndex)
        self.foldModels = fold_models or {}
        self.classes = classes

    @property
    def avgMetrics(self) -> list:
        """``cvMetrics`` under CrossValidatorModel's name."""
        return self.cvMetrics

    @property
    def bestRegParam(self) -> float:
        return float(self.regParams[self.bestIndex])

    @property
    def bestElasticNetParam(self) -> float:
        """α of the chosen point (the path table's elasticNetParam; 0.0 for a pure L2 grid)."""
        return float(self.path[self.bestIndex]["elasticNetParam"]) if self.path else 0.0

    def pathTable(self, spark=None):
        """The path table as a Spark DataFrame (one row per regParam, in the given order)."""
        from pyspark.sql import SparkSession

        spark = spark or SparkSession.getActiveSession()
        return spark.createDataFrame([{k: v for k, v in row.items()} for row in self.path])

    def _transform(self, dataset):
        return self.bestModel.transform(dataset)

    def write(self) -> MLWriter:
        """bestModel, the path table, cvMetrics, stdMetrics and the fold models (``sparkml.cv_io``)."""
        return CVModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return CVModelReader(cls)

# the class path saved metadata records (see softmax_spark.ml)
SoftmaxRegressionCV.__module__ = SoftmaxRegressionCVModel.__module__ = "softmax_spark.ml"
