"""``SoftmaxRegression.fitMultiple``: one ingest and a warm-started path for the param maps of one fit.

``CrossValidator`` and ``TrainValidationSplit`` call ``estimator.fitMultiple(train, paramMaps)``
once per fold (PySpark's default fits each map separately: one ingest each). Here the param maps
that differ only in ``regParam`` (pure L2: elasticNetParam 0) form a *path*: the training rows are
ingested once, the maps are fitted in order of decreasing penalty (strongest first, ties in the
given order), each from the previous model (warm start), all on the same executor-local blocks
and the same ``DistributedLoss`` — or, when the training rows are small enough for the driver
(``maxDriverBytes``, the rule of a single fit: ``driver_data``), collected once (one JVM job) and
the whole path solved in the driver with no Python worker. Maps the path does not cover (an L1 part, sgd, early stopping,
checkpoints, an initial model) are fitted separately, as before.

Tolerance: a map whose ``tol`` is set keeps it; with ``tol`` unset (MLlib's default 1e-6) each path
model runs to its solver's own exact stopping rule (Newton: ½gᵀH⁻¹g/max(|J|,1) ≤ 1e-16; L-BFGS 1e-9)
— from a warm start that costs one or two passes more, and the models compared across the grid are
the optima, not points up to 1e-6 away (on 2,000 rows of the model-selection data a Newton fit at tol 1e-6
stops up to 5e-5 away in validation log-loss). So ``fitMultiple``'s models equal separate fits to the
solver tolerance the separate fits stop at, and are exact where those are not.

The iterator returned is thread-safe (CrossValidator's ``parallelism`` calls ``next`` from several
threads): the first ``next`` fits every map, later ones hand out the results.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

import numpy as np
from softmax_spark.spark.fit_output import quiet_fit
from softmax_spark.spark.shipping import ensure_workers, workers_python
from softmax_spark.spark.backend import default_parallelism
from softmax_spark.fit.loop import TrainingLoop
from softmax_spark.sparkml.labels import resolve_classes
from softmax_spark.sparkml.model import SoftmaxRegressionModel
from softmax_spark.sparkml.summary import training_summary
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.solvers import make_solver, resolve_optimizer
from softmax_spark.fit.training import TrainingData, build_problem, model_metadata, read_inputs, training_class_weights
from softmax_spark.core.errors import InputError
from softmax_spark.spark.schema import storage_dtype
from softmax_spark.spark.driver_data import table_classes

__all__ = ["fit_multiple", "PATH_SOLVERS"]

log = logging.getLogger("softmax_spark")

PATH_SOLVERS = ("auto", "newton", "lbfgs", "newton-cg")


def fit_multiple(estimator, dataset, param_maps):
    """A thread-safe iterator of (index, model), one per param map (see the module docstring)."""
    return _PathIterator(estimator, dataset, list(param_maps))


class _PathIterator:
    def __init__(self, estimator, dataset, param_maps):
        self.estimator, self.dataset, self.param_maps = estimator, dataset, param_maps
        self.models = None
        self.counter = 0
        self.lock = threading.Lock()

    def __iter__(self):
        return self

    def __next__(self):
        with self.lock:
            if self.counter >= len(self.param_maps):
                raise StopIteration("No models remaining.")
            if self.models is None:
                self.models = fit_all(self.estimator, self.dataset, self.param_maps)
            index = self.counter
            self.counter += 1
        return index, self.models[index]

    next = __next__


def _pathable(est) -> bool:
    """Whether ``est`` (a SoftmaxRegression with its map applied) can be fitted on a shared path."""
    if (est.getElasticNetParam() > 0 and est.getRegParam() > 0) or est._bounded():
        return False  # the path is the L2 one (bounds and L1 are fitted one by one)
    if est.getSolver() not in PATH_SOLVERS or est._initial_model_instance is not None:
        return False
    if est._value(est.initialModel) or est._value(est.checkpointDir) or est.getOrDefault(est.validationFraction):
        return False
    return not est._value(est.validationIndicatorCol)


def _group_key(est) -> str:
    """Every Param value but regParam (and elasticNetParam, 0 on a path), as text."""
    items = {p.name: est.getOrDefault(p) for p in est.params if est.isDefined(p)
             and p.name not in ("regParam", "elasticNetParam")}
    items["_tol_set"] = est.isSet(est.tol)
    return repr(sorted((k, repr(v)) for k, v in items.items()))


def fit_all(estimator, dataset, param_maps) -> list:
    """One model per param map: the pathable maps grouped by their other Params, each group of
    two or more fitted as one path (``fit_path``), the rest by ``estimator.fit``."""
    ests = [estimator.copy(pm) for pm in param_maps]
    models: list = [None] * len(ests)
    groups: dict = {}
    tables: dict = {}

    def shared_table(est):
        """The training columns collected to the driver once per (columns, limits) for all the maps
        (``SoftmaxRegression._collect_small``; None: too large, ingest as usual)."""
        key = (est.getFeaturesCol(), est.getLabelCol(), est._value(est.weightCol) or None,
               est.getOrDefault(est.maxDriverBytes), est._value(est.validationIndicatorCol),
               est.getOrDefault(est.validationFraction))
        if key not in tables:
            tables[key] = est._collect_small(dataset)
        return tables[key]

    def fit_one(est):
        est._shared_driver_table = shared_table(est)
        return est.fit(dataset)

    for i, est in enumerate(ests):
        if _pathable(est):
            groups.setdefault(_group_key(est), []).append(i)
        else:
            models[i] = fit_one(est)
    for indices in groups.values():
        if len(indices) == 1:
            models[indices[0]] = fit_one(ests[indices[0]])
            continue
        path = [ests[i] for i in indices]
        for i, model in zip(indices, fit_path(path, dataset, shared_table(path[0]))):
            models[i] = model
    return models


def fit_path(ests, dataset, table=False) -> list:
    """``SoftmaxRegression`` estimators differing only in regParam, fitted on ``dataset`` from one
    ingest, strongest penalty first, each warm-started from the previous; models in the given order.
    As ``SoftmaxRegression._fit``: the package shipped to workers that lack it, progress at DEBUG
    unless the first estimator's ``verbose`` is set."""
    ensure_workers(dataset.sparkSession)
    with quiet_fit(ests[0].getOrDefault(ests[0].verbose)), workers_python(dataset.sparkSession):
        return _fit_path(ests, dataset, table)


def _fit_path(ests, dataset, table=False) -> list:
    first = ests[0]
    for est in ests:
        est._check_params()
    # small data: the training rows collected to the driver once (one JVM job, no Python worker) and
    # the whole path solved there, as SoftmaxRegression._fit_dataframe does for one fit (driver_data)
    if table is False:  # not collected by the caller (fit_all shares one collect among the maps)
        table = first._collect_small(dataset)
    values = None
    if table is not None:

        values = table_classes(table, first.getLabelCol())
    classes, _ = resolve_classes(dataset, first.getLabelCol(), first.getOrDefault(first.labelIndexing), values)
    n_classes = len(classes)
    family = first.getFamily()
    if family == "binomial" and n_classes > 2:
        raise InputError(f"family='binomial' supports 1 or 2 classes, column '{first.getLabelCol()}' has "
                         f"{n_classes}; use family='multinomial'")
    binomial = family == "binomial" or (family == "auto" and n_classes <= 2)
    first._model_thresholds(n_classes, binomial)
    cfgs = []
    for est in ests:
        lam = est.getRegParam() if binomial else est.getRegParam() / 2.0  # as SoftmaxRegression._fit
        cfg = est._train_config(classes, lam, None)
        if not est.isSet(est.tol):
            cfg = dataclasses.replace(cfg, tol=None)
        cfgs.append(cfg)
    spark = dataset.sparkSession
    cfg0 = cfgs[0]
    df, files, _, _, classes = read_inputs(spark, cfg0, dataset)

    dtype = storage_dtype(cfg0.dtype, df.schema, cfg0.feature_spec)
    cfgs = [dataclasses.replace(c, dtype=dtype) for c in cfgs]
    order = sorted(range(len(ests)), key=lambda i: (-cfgs[i].l2, i))
    models: list = [None] * len(ests)
    n_partitions = cfg0.num_partitions or default_parallelism(spark)
    with TrainingData(cfgs[0], classes, n_partitions, first.getOrDefault(first.maxDriverBytes), table) as data:
        summary = data.add("train", df, files).summary
        if cfg0.weight_col and summary.weight_sum <= 0:
            raise InputError(f"column '{cfg0.weight_col}': every sample weight is 0")
        class_weight = training_class_weights(cfg0, data, summary, len(classes))
        density = getattr(summary, "density", 1.0) or 1.0
        solver_name, solver_reason = resolve_optimizer(cfg0, summary.n_rows, len(classes), summary.n_features, density)
        log.info("fitMultiple: %d regParams on one ingest, warm-started strongest first; optimizer %s (%s)",
                 len(ests), solver_name, solver_reason)
        dist = None
        coef = np.zeros((len(classes), summary.n_features))
        intercept = np.zeros(len(classes))
        for i in order:
            cfg = cfgs[i]
            problem, _ = build_problem(cfg, data, class_weight)
            if dist is None:
                dist = problem.dist
            else:  # one loss for the path: its partition list and resident tasks are kept
                problem.dist = dist
            loop = TrainingLoop(make_solver(cfg, solver_name), problem, cfg.max_iter)
            result = loop.run(problem.from_model(coef, intercept))
            for record in result.history:
                record.setdefault("solver", solver_name)
            coef, intercept = problem.to_model(result.theta)
            metadata = model_metadata(cfg, summary, result, solver_name, solver_reason, problem, class_weight,
                                      fit_multiple={"path_position": order.index(i), "warm_start": order.index(i) > 0})
            fitted = SoftmaxModel(coef.copy(), intercept.copy(), classes, history=result.history,
                                  metadata=metadata).centered()
            est = ests[i]
            model = SoftmaxRegressionModel(fitted, binomial=binomial)
            model._resetUid(est.uid)
            est._copyValues(model)
            model._summary = _LazySummary(model, dataset, fitted.history, result.reason)
            models[i] = model
    return models


class _LazySummary:
    """A path model's training summary, built (``summary.training_summary``) on first use: the
    tuning loops never read it, and building it plans a scoring of the training rows (about 40 ms
    a model on 2,000 rows)."""
    def __init__(self, model, dataset, history, stop_reason):
        self._args = (model, dataset, history, stop_reason)
        self._built = None

    def _real(self):
        if self._built is None:

            self._built = training_summary(*self._args)
            self._args = None
        return self._built

    def __getattr__(self, name):
        return getattr(self._real(), name)
