"""MLflow autologging for ``softmax_spark.ml.SoftmaxRegression``.

    import softmax_spark.sparkml.mlflow_support as sms
    sms.autolog()                      # instead of mlflow.pyspark.ml.autolog(); same arguments
    model = SoftmaxRegression(regParam=0.01).fit(df)      # logged: Params, metrics, the model

What ``mlflow.pyspark.ml.autolog()`` alone does with our Estimator (MLflow 3.18): it logs every
Param, including the SGD-only ones for a Newton fit, and not the model, because MLflow logs only
the model classes of its allowlist (``mlflow/pyspark/ml/log_model_allowlist.txt``, or the file
named by the Spark conf ``spark.mlflow.pysparkml.autolog.logModelAllowlistFile``, or autolog's
``log_model_allowlist`` argument). ``autolog(**kwargs)`` here calls it with:

- ``log_model_allowlist``: the caller's list (else MLflow's built-in or conf list) plus
  ``softmax_spark.ml.SoftmaxRegressionModel`` — the model is logged (``mlflow.spark`` flavor, a
  ``model`` artifact) and ``mlflow.spark.load_model`` reloads it;
- Params: only those that apply to the solver used — the Params of the options declared as read
  by sgd (``solvers=`` in ``softmax_spark.fit.config``: batchFraction, learningRate, schedule, …)
  only for ``solver="sgd"``, those read by lbfgs only for lbfgs (for
  ``solver="auto"``, logged after the fit if auto chose lbfgs), patience only with a validation
  set, checkpointInterval only with checkpointDir. After the fit: the param ``resolvedSolver``;
- metrics: ``objective`` (the training objective J, step = iteration 1, 2, …; MLlib's
  ``objectiveHistory`` also starts with the initial value, ours not), ``grad_norm`` when
  recorded, ``validation_loss`` with early stopping, ``totalIterations``;
- requirements: MLflow infers ``softmax-spark==<version>`` from the installed distribution,
  which no package index serves. ``requirement()`` gives one pip can install: ``softmax-spark @
  <url>`` from the install's PEP 610 ``direct_url.json`` (the wheel or directory it was installed
  from), else ``softmax-spark==<version>``. The model logged by autolog carries
  ``pip_requirements()``: that line and our runtime dependencies pinned to the installed versions
  (``mlflow.spark.log_model`` is wrapped while autologging to pass them; MLflow's own inference is
  then skipped). Pass ``pip_requirement=`` (e.g. a wheel URL on shared storage, or ``None`` to
  keep MLflow's inferred requirements) to choose another.

The filtering of Params replaces ``mlflow.pyspark.ml._get_param_map`` (a private MLflow function)
for our Estimator only; with a MLflow without it, every Param is logged (a warning says so).
``autolog(disable=True)`` undoes both wrappers.
"""

from __future__ import annotations

import functools
import json
import logging
from importlib import metadata as importlib_metadata

from softmax_spark.fit.config import option_params, solver_options
from softmax_spark.sparkml.classification import SoftmaxRegression
from softmax_spark.sparkml.classification import SoftmaxRegressionModel
from softmax_spark.sparkml import classification as ml

__all__ = ["autolog", "requirement", "pip_requirements", "inapplicable_params", "MODEL_CLASS"]

log = logging.getLogger("softmax_spark")

MODEL_CLASS = "softmax_spark.ml.SoftmaxRegressionModel"
DISTRIBUTION = "softmax_spark"
# the Params of the options declared as read by that solver (``solvers=`` in softmax_spark.fit.config)
SGD_PARAMS = tuple(option_params()[name].metadata["param"] for name in solver_options("sgd")
                   if name in option_params())
LBFGS_PARAMS = tuple(option_params()[name].metadata["param"] for name in solver_options("lbfgs")
                     if name in option_params())

_state = {"installed": False, "pip_requirement": None, "orig_param_map": None, "orig_log_model": None}


def requirement() -> str:
    """A pip requirement line that installs this softmax_spark: ``softmax-spark @ <url>`` when the
    installed distribution records where it came from (PEP 610 ``direct_url.json``: a local wheel,
    a directory, a VCS URL), else ``softmax-spark==<version>``."""
    dist = importlib_metadata.distribution(DISTRIBUTION)
    name = dist.metadata["Name"].replace("_", "-")
    text = dist.read_text("direct_url.json")
    if text:
        info = json.loads(text)
        url = info.get("url")
        vcs = info.get("vcs_info")
        if url and vcs:
            url = f"{vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id')}"
        if url:
            return f"{name} @ {url}"
    return f"{name}=={dist.version}"


def inapplicable_params(estimator, resolved_solver: str | None = None) -> set:
    """Names of the estimator's Params that do not apply to this fit (to leave unlogged): see the
    module docstring. ``resolved_solver``: the solver ``auto`` chose, when known."""
    solver = resolved_solver or estimator.getOrDefault(estimator.solver)
    skip = set()
    if solver != "sgd":
        skip.update(SGD_PARAMS)
    if solver not in ("lbfgs",):  # auto before the fit: lbfgs Params wait for the resolved solver
        skip.update(LBFGS_PARAMS)
    validation = (estimator.isDefined(estimator.validationIndicatorCol) and estimator.getValidationIndicatorCol()) \
        or estimator.getOrDefault(estimator.validationFraction)
    if not validation:
        skip.add("patience")
    if not estimator._value(estimator.checkpointDir):
        skip.add("checkpointInterval")
    return skip


def _is_ours(instance) -> bool:
    return isinstance(instance, SoftmaxRegression)


def _filtered_param_map(original, instance):
    params = original(instance)
    if _is_ours(instance):
        skip = inapplicable_params(instance)
        params = {k: v for k, v in params.items() if k not in skip}
    return params


def pip_requirements(line: str | None = None) -> list[str]:
    """The requirements of a logged model holding ours: ``line`` (default ``requirement()``) and
    softmax_spark's own runtime dependencies (its ``Requires-Dist``) pinned to the installed
    versions. Given to ``mlflow.spark.log_model(pip_requirements=…)`` it replaces MLflow's
    inference, whose ``softmax-spark==<version>`` pin no index serves (and which MLflow would
    merge with a direct reference into the invalid ``softmax-spark==0.1.0 @ <url>``)."""
    from packaging.requirements import Requirement

    lines = [line or requirement()]
    for text in importlib_metadata.distribution(DISTRIBUTION).requires or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra's (dev) or another platform's dependency
        try:
            lines.append(f"{req.name}=={importlib_metadata.version(req.name)}")
        except importlib_metadata.PackageNotFoundError:
            lines.append(str(req))
    return lines


def _log_model_with_requirement(original, *args, **kwargs):
    requirement_line = _state["pip_requirement"]
    model = args[0] if args else kwargs.get("spark_model")
    if (requirement_line and _contains_ours(model) and kwargs.get("pip_requirements") is None
            and kwargs.get("extra_pip_requirements") is None and kwargs.get("conda_env") is None):
        kwargs["pip_requirements"] = pip_requirements(requirement_line)
    return original(*args, **kwargs)


def _contains_ours(model) -> bool:
    if isinstance(model, SoftmaxRegressionModel):
        return True
    stages = getattr(model, "stages", None)
    if stages:
        return any(_contains_ours(s) for s in stages)
    best = getattr(model, "bestModel", None)
    return best is not None and _contains_ours(best)


def _training_session_is_ours(estimator) -> bool:
    """The fit being logged by MLflow's autolog is this estimator's (not a child fit of a
    CrossValidator / Pipeline, which MLflow does not log either)."""
    try:
        from mlflow.pyspark.ml import _SparkTrainingSession
    except ImportError:
        return False
    session = _SparkTrainingSession.get_current_session()
    return session is not None and getattr(session.estimator, "uid", None) == estimator.uid and session.should_log()


def _after_fit(estimator, model) -> None:
    """``ml.FIT_LISTENERS`` entry: the fit's metrics (and the resolved solver) into the active run."""
    import mlflow
    from mlflow.utils.autologging_utils import autologging_is_disabled

    if autologging_is_disabled("pyspark.ml") or mlflow.active_run() is None:
        return
    if not _training_session_is_ours(estimator):
        return
    summary = model.summary
    resolved = next((h.get("solver") for h in summary.history if h.get("solver")), None)
    params = {"resolvedSolver": resolved or estimator.getOrDefault(estimator.solver)}
    if estimator.getOrDefault(estimator.solver) == "auto" and resolved == "lbfgs":
        params.update({name: estimator.getOrDefault(getattr(estimator, name)) for name in LBFGS_PARAMS})
    mlflow.log_params(params)
    metrics = []
    from mlflow.entities import Metric
    from mlflow.utils.time import get_current_time_millis

    now = get_current_time_millis()
    for step, record in enumerate(summary.history, start=1):
        for key in ("objective", "grad_norm", "validation_loss"):
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics.append(Metric(key, float(value), now, step))
    metrics.append(Metric("totalIterations", float(summary.totalIterations), now, 0))
    client = mlflow.MlflowClient()
    run_id = mlflow.active_run().info.run_id
    for start in range(0, len(metrics), 1000):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=metrics[start:start + 1000])


def autolog(*, pip_requirement: str | None | type(...) = ..., disable: bool = False, **kwargs):
    """``mlflow.pyspark.ml.autolog(**kwargs)`` that also logs ``SoftmaxRegressionModel``
    (see the module docstring for what is logged).

    pip_requirement : the requirement line added to a logged model holding ours; default
        ``requirement()``; ``None`` leaves MLflow's inferred pin.
    disable         : as MLflow's: stops autologging and removes our wrappers.
    kwargs          : passed to ``mlflow.pyspark.ml.autolog`` (``log_model_allowlist`` is extended
        with our model class).
    Raises ``ImportError`` when mlflow is not installed.
    """
    import mlflow
    import mlflow.pyspark.ml as mlflow_ml
    import mlflow.spark


    if disable:
        _uninstall(mlflow_ml, mlflow.spark, ml)
        return mlflow_ml.autolog(disable=True, **kwargs)
    allowlist = kwargs.pop("log_model_allowlist", None)
    if allowlist:
        allowlist = {name.strip() for name in allowlist}
    else:
        allowlist = set(mlflow_ml._read_log_model_allowlist())
    allowlist.add(MODEL_CLASS)
    result = mlflow_ml.autolog(log_model_allowlist=sorted(allowlist), **kwargs)
    _state["pip_requirement"] = requirement() if pip_requirement is ... else pip_requirement
    if not _state["installed"]:
        original = getattr(mlflow_ml, "_get_param_map", None)
        if original is None:
            log.warning("mlflow.pyspark.ml has no _get_param_map: every SoftmaxRegression Param is logged")
        else:
            _state["orig_param_map"] = original
            mlflow_ml._get_param_map = functools.partial(_filtered_param_map, original)
        _state["orig_log_model"] = mlflow.spark.log_model
        mlflow.spark.log_model = functools.wraps(mlflow.spark.log_model)(
            functools.partial(_log_model_with_requirement, mlflow.spark.log_model))
        ml.FIT_LISTENERS.append(_after_fit)
        _state["installed"] = True
    return result


def _uninstall(mlflow_ml, mlflow_spark, ml) -> None:
    if not _state["installed"]:
        return
    if _state["orig_param_map"] is not None:
        mlflow_ml._get_param_map = _state["orig_param_map"]
    mlflow_spark.log_model = _state["orig_log_model"]
    if _after_fit in ml.FIT_LISTENERS:
        ml.FIT_LISTENERS.remove(_after_fit)
    _state.update(installed=False, orig_param_map=None, orig_log_model=None)
