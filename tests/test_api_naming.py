"""One naming scheme: the plain Python API (SoftmaxTrainer / train, snake_case, l2 = λ) and the
Spark ML Estimator (softmax_spark.ml.SoftmaxRegression, camelCase Params) refuse each other's
style with an error naming the other API; help() shows real signatures."""

import inspect
import pydoc
import warnings

import pytest


def test_plain_api_names_and_deprecated_alias():
    import softmax_spark
    from softmax_spark import SoftmaxTrainer, train

    assert softmax_spark.SoftmaxTrainer is SoftmaxTrainer and callable(train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = softmax_spark.SoftmaxRegression(l2=0.1)
    assert isinstance(old, SoftmaxTrainer) and old.options == {"l2": 0.1}
    (w,) = caught
    assert w.category is DeprecationWarning and "softmax_spark.SoftmaxTrainer" in str(w.message)
    assert "softmax_spark.ml.SoftmaxRegression" in str(w.message)
    from softmax_spark.fit.estimator import SoftmaxRegression as from_old_module

    assert from_old_module is softmax_spark.SoftmaxRegression


def test_wrong_style_errors_name_the_other_api():
    from softmax_spark import SoftmaxTrainer, train
    from softmax_spark.sparkml.classification import SoftmaxRegression

    with pytest.raises(TypeError, match=r"regParam is a Param of the Spark ML Estimator "
                                        r"softmax_spark.ml.SoftmaxRegression.*regParam → l2"):
        SoftmaxTrainer(regParam=0.1)
    with pytest.raises(TypeError, match=r"maxIter → max_iter"):
        train(None, maxIter=3)
    with pytest.raises(TypeError, match=r"l2 is an option of the plain Python API softmax_spark.SoftmaxTrainer"
                                        r".*l2 → regParam.*regParam = 2·l2"):
        SoftmaxRegression(l2=0.1)
    with pytest.raises(TypeError, match=r"unknown Params \['nope'\]"):
        SoftmaxRegression(nope=1)
    with pytest.raises(TypeError, match=r"unknown options \['nope'\]"):
        SoftmaxTrainer(nope=1)


def test_help_shows_signatures_and_docs():
    from softmax_spark import SoftmaxTrainer, train
    from softmax_spark.sparkml.classification import SoftmaxRegression

    sig = inspect.signature(SoftmaxTrainer)
    assert sig.parameters["l2"].default == 1e-4 and sig.parameters["l2"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "max_iter" in inspect.signature(train).parameters
    est = inspect.signature(SoftmaxRegression)
    assert est.parameters["regParam"].default == 0.0 and est.parameters["maxIter"].default == 100
    assert est.parameters["weightCol"].default is None
    assert "initModelClasses" in est.parameters
    text = pydoc.render_doc(SoftmaxRegression, renderer=pydoc.plaintext)
    assert "regParam=0.0" in text and "regularization parameter" in text
    text = pydoc.render_doc(SoftmaxTrainer, renderer=pydoc.plaintext)
    assert "l2: float = 0.0001" in text and "mean weighted log-loss" in text
