"""The Spark ML Estimator's own language: CLI flags → Params in messages, one-class diagnosis,
MLlib's prediction-column metadata.

``softmax_spark.ml.SoftmaxRegression`` runs the same training code as ``jobs/train.py``, whose
messages name the job's flags (``--l2``, ``--init-model-classes``). Inside an Estimator fit they
are rewritten here to the Params a Spark ML user sets (``regParam``, ``initModelClasses``).
No Spark import at module level.
"""

from __future__ import annotations

import re

from softmax_spark.fit.config import param_to_option

__all__ = ["FLAG_TO_PARAM", "PARAM_TO_OPTION", "to_params", "one_class_problem", "prediction_metadata"]

# TrainConfig field → the Estimator's Param (fields without a Param are left as they are): the
# declarations' ``param=`` (softmax_spark.fit.config)
FLAG_TO_PARAM = {option: param for param, option in param_to_option().items()}
# the other way, for a wrong-style call (a Param given to the plain Python API)
PARAM_TO_OPTION = {param: option for option, param in FLAG_TO_PARAM.items()}

_FLAG = re.compile(r"--(no-)?([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")


def to_params(message: str) -> str:
    """``message`` with each job flag that has a Param replaced by the Param's name
    (``--l2`` → ``regParam``, ``--init-model-classes`` → ``initModelClasses``, ``--no-x`` → ``x=False``)
    and λ spelt as regParam's scale. Flags without a Param stay."""

    def swap(match):
        negated, name = match.group(1), match.group(2).replace("-", "_")
        param = FLAG_TO_PARAM.get(name)
        if param is None:
            return match.group(0)
        return f"{param}=False" if negated else param

    text = _FLAG.sub(swap, message)
    # "set regParam > 0" is right on both scales (λ = regParam or regParam/2); "(λ = 0)" is ours
    return text.replace("(λ = 0)", "(regParam = 0)")


def one_class_problem(present: list, classes: list, label_col: str, fit_intercept: bool) -> str | None:
    """The reason a fit whose labels hold one distinct value has no finite optimum, or None.

    ``present``: the distinct labels in the data; ``classes``: the model's classes. One present
    label with ``fitIntercept=True`` and ≥ 2 classes: the log-loss falls toward 0 as the present
    class's intercept grows, and regParam does not penalise intercepts, so no finite optimum exists
    at any regParam (MLlib returns an infinite intercept then). One class in all (``classes`` of
    length 1): our models have ≥ 2 classes (MLlib returns a 1-class model with an infinite intercept)."""
    if len(classes) == 1:
        return (f"column '{label_col}' holds one class ({classes[0]!r}) only, and a softmax model needs at least "
                f"2 (MLlib returns a 1-class model predicting {classes[0]!r} for every row, with an infinite "
                f"intercept); give rows of at least two classes")
    if len(present) != 1 or not fit_intercept:
        return None
    absent = [c for c in classes if c != present[0]]
    shown = ", ".join(repr(c) for c in absent[:5]) + (", …" if len(absent) > 5 else "")
    return (f"column '{label_col}' holds the one label {present[0]!r}, so class(es) {shown} of classes "
            f"{list(classes)[:6]}{'…' if len(classes) > 6 else ''} have no rows: with fitIntercept=True the "
            f"unpenalised intercept has no finite optimum at any regParam (MLlib returns an infinite intercept); "
            f"give rows of at least two classes")


def prediction_metadata(n_classes: int) -> dict:
    """The ML attribute metadata MLlib's classifiers put on ``predictionCol``: a nominal attribute
    with ``num_vals`` = the number of classes (``NominalAttribute.defaultAttr.withNumValues(K)``,
    read back by ``MetadataUtils.getNumClasses``)."""
    return {"ml_attr": {"type": "nominal", "num_vals": int(n_classes)}}


def unknown_params_message(unknown: list, known: set) -> str:
    """The ``TypeError`` text for names the Estimator does not know: snake_case options of the
    plain Python API (``l2``, ``max_iter``) are named as such, with the Param to use."""
    options = [name for name in unknown if name in FLAG_TO_PARAM or name in _PLAIN_ONLY]
    if not options:
        return f"unknown Params {unknown}; known: {sorted(known)}"
    hints = ", ".join(f"{o} → {FLAG_TO_PARAM[o]}" for o in options if o in FLAG_TO_PARAM)
    scale = " (regParam = 2·l2 for a multinomial model, = l2 for a binomial one)" if "l2" in options else ""
    return (f"{', '.join(options)} {'is an option' if len(options) == 1 else 'are options'} of the plain Python "
            f"API softmax_spark.SoftmaxTrainer (snake_case); this Spark ML Estimator takes camelCase Params"
            f"{': ' + hints if hints else ''}{scale}")


# TrainConfig options with no Param (named as options in the wrong-style error)
_PLAIN_ONLY = {"input", "model_dir", "overwrite", "feature_cols", "classes", "dtype", "parametrization",
               "precondition", "validation_input", "write_mllib"}


def document_params(cls) -> None:
    """Give ``cls`` (a Spark ML Params class whose ``__init__``/``setParams`` take ``**kwargs``)
    real signatures and a Params list in ``help()``: each Param keyword-only with its default (None
    when it has none) and its doc, from the Param declarations themselves."""
    import inspect

    instance = cls()
    params = sorted(instance.params, key=lambda p: p.name)
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)]
    lines = []
    for p in params:
        default = instance.getOrDefault(p) if instance.hasDefault(p) else None
        parameters.append(inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=default))
        lines.append(f"    {p.name} = {default!r}\n        {p.doc}")
    signature = inspect.Signature(parameters)
    for method in ("__init__", "setParams"):
        function = cls.__dict__.get(method)
        if function is not None:
            function.__signature__ = signature
    cls.__doc__ = (cls.__doc__ or "") + "\n\n    Params (name = default, then its doc):\n\n" + "\n".join(lines) + "\n"
