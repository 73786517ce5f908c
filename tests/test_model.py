"""Properties of the pure-numpy softmax model (softmax_spark.core.model). No Spark here."""

import ast
import itertools
import os

import numpy as np
import pytest

from softmax_spark.core.loss import log_softmax, softmax
from softmax_spark.core.model import LogisticModel, SoftmaxModel, labels_to_index, sorted_classes


def random_model(rng, n_classes, n_features, scale=1.0, classes=None):
    coef = scale * rng.normal(size=(n_classes, n_features))
    intercept = scale * rng.normal(size=n_classes)
    return SoftmaxModel(coef, intercept, list(range(n_classes)) if classes is None else classes)


def sigmoid(z):
    """σ(z) written independently of the code under test (stable for both signs)."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


# -- log-odds -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_log_odds_is_linear_in_x(seed):
    """For every pair (i, j) of a random C=7 model: log p(i|x)/p(j|x) = (w_i − w_j)·x + (b_i − b_j),
    both as returned by ``log_odds(i, j)`` and as the log-ratio of ``predict_proba`` columns."""
    rng = np.random.default_rng(seed)
    C, D = 7, 5
    model = random_model(rng, C, D, scale=2.0)
    X = rng.normal(size=(50, D)) * 3.0
    P = model.predict_proba(X)
    logP = model.predict_log_proba(X)
    for i, j in itertools.permutations(range(C), 2):
        v, c = model.log_odds(i, j)
        np.testing.assert_allclose(v, model.coef[i] - model.coef[j], rtol=0, atol=0)
        assert c == pytest.approx(model.intercept[i] - model.intercept[j], abs=1e-15)
        expected = X @ (model.coef[i] - model.coef[j]) + (model.intercept[i] - model.intercept[j])
        np.testing.assert_allclose(X @ v + c, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.log(P[:, i] / P[:, j]), expected, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(logP[:, i] - logP[:, j], expected, rtol=1e-12, atol=1e-11)


def test_log_odds_antisymmetric_and_zero_on_diagonal():
    """log_odds(i, j) = −log_odds(j, i) and log_odds(i, i) = (0, 0)."""
    rng = np.random.default_rng(1)
    model = random_model(rng, 7, 4)
    for i, j in itertools.product(range(7), repeat=2):
        v_ij, c_ij = model.log_odds(i, j)
        v_ji, c_ji = model.log_odds(j, i)
        np.testing.assert_array_equal(v_ij, -v_ji)
        assert c_ij == -c_ji
        if i == j:
            assert not np.any(v_ij) and c_ij == 0.0


# -- binary softmax = logistic ------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_binary_softmax_equals_sigmoid(seed):
    """For C = 2, p(classes[1]|x) = σ(v·x + c) with v = w_1 − w_0, c = b_1 − b_0: ``to_logistic()``
    gives (v, c), and LogisticModel.predict_proba equals the softmax model's predict_proba."""
    rng = np.random.default_rng(seed)
    model = random_model(rng, 2, 6, scale=3.0, classes=["neg", "pos"])
    X = rng.normal(size=(80, 6)) * 4.0
    logistic = model.to_logistic()
    assert isinstance(logistic, LogisticModel)
    np.testing.assert_array_equal(logistic.coef, model.coef[1] - model.coef[0])
    assert logistic.intercept == pytest.approx(model.intercept[1] - model.intercept[0], abs=1e-15)
    assert logistic.classes == ["neg", "pos"]
    z = X @ (model.coef[1] - model.coef[0]) + (model.intercept[1] - model.intercept[0])
    P = model.predict_proba(X)
    np.testing.assert_allclose(P[:, 1], sigmoid(z), rtol=0, atol=1e-12)
    np.testing.assert_allclose(P[:, 0], sigmoid(-z), rtol=0, atol=1e-12)
    Q = logistic.predict_proba(X)
    assert Q.shape == (80, 2)
    np.testing.assert_allclose(Q, P, rtol=0, atol=1e-12)
    np.testing.assert_allclose(Q.sum(axis=1), 1.0, atol=1e-15)


def test_logistic_model_extreme_logits():
    """LogisticModel.predict_proba is finite and saturates to 0/1 for z = ±1e4 (no overflow)."""
    lm = LogisticModel(np.array([1.0]), 0.0, [0, 1])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        Q = lm.predict_proba(np.array([[1e4], [-1e4], [0.0]]))
    np.testing.assert_array_equal(Q, [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])


def test_to_logistic_needs_two_classes():
    """to_logistic on a 3-class model is a ValueError."""
    model = random_model(np.random.default_rng(0), 3, 2)
    with pytest.raises(ValueError, match="2 classes"):
        model.to_logistic()


# -- over-parameterisation: shift invariance, centered(), reference(k) ---------------------------
@pytest.mark.parametrize("seed", range(5))
def test_shift_of_every_row_leaves_probabilities_unchanged(seed):
    """Adding any vector u to every row of W and any constant a to every b_c changes no
    probability (to 1e-12)."""
    rng = np.random.default_rng(seed)
    C, D = 7, 4
    model = random_model(rng, C, D)
    X = rng.normal(size=(60, D))
    u = rng.normal(size=D) * 10.0
    a = float(rng.normal() * 10.0)
    shifted = SoftmaxModel(model.coef + u, model.intercept + a, model.classes)
    np.testing.assert_allclose(shifted.predict_proba(X), model.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(shifted.predict(X), model.predict(X))


@pytest.mark.parametrize("seed", range(3))
def test_centered_and_reference_give_same_probabilities(seed):
    """centered() and reference(k) (every k, and the default −1) give the probabilities of the
    original model (1e-12); centered rows of W sum to 0 and Σ b = 0; reference row k of W and b_k
    are exactly 0; the original model is left untouched."""
    rng = np.random.default_rng(seed)
    C, D = 7, 5
    model = random_model(rng, C, D, scale=3.0)
    model.history.append({"iteration": 1})
    model.metadata["l2"] = 0.1
    coef0, intercept0 = model.coef.copy(), model.intercept.copy()
    X = rng.normal(size=(40, D)) * 2.0
    P = model.predict_proba(X)

    cen = model.centered()
    np.testing.assert_allclose(cen.coef.sum(axis=0), 0.0, atol=1e-12)
    assert abs(cen.intercept.sum()) <= 1e-12
    np.testing.assert_allclose(cen.predict_proba(X), P, rtol=0, atol=1e-12)
    assert cen.classes == model.classes and cen.history == model.history and cen.metadata == model.metadata

    for k in list(range(C)) + [-1]:
        ref = model.reference(k)
        assert not np.any(ref.coef[k]) and ref.intercept[k] == 0.0
        np.testing.assert_allclose(ref.predict_proba(X), P, rtol=0, atol=1e-12)
        np.testing.assert_allclose(ref.predict_proba(X), cen.predict_proba(X), rtol=0, atol=1e-12)
    assert model.reference().coef[-1].tolist() == [0.0] * D  # default k = −1: last row

    # centering a reference model gives the centred model (the centred form is unique)
    np.testing.assert_allclose(model.reference(2).centered().coef, cen.coef, atol=1e-12)
    np.testing.assert_allclose(model.reference(2).centered().intercept, cen.intercept, atol=1e-12)
    np.testing.assert_array_equal(model.coef, coef0)
    np.testing.assert_array_equal(model.intercept, intercept0)


# -- numerical robustness -----------------------------------------------------------------------
def test_extreme_logits_give_finite_probabilities():
    """Logits of ±1e4 give finite probabilities that sum to 1 and finite log-probabilities;
    the dominating class gets probability 1, the others 0 (no NaN, no overflow warnings)."""
    coef = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    model = SoftmaxModel(coef, np.zeros(3), ["a", "b", "c"])
    X = np.array([[1e4, 0.0], [-1e4, 0.0], [0.0, 1e4], [1e4, 1e4], [0.0, -1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        P = model.predict_proba(X)
        L = model.predict_log_proba(X)
    assert np.all(np.isfinite(P)) and np.all(np.isfinite(L))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(P[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(P[1], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(P[2], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(P[3], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(L[1], [-2e4, 0.0, -1e4])
    assert list(model.predict(X[:3])) == ["a", "b", "c"]


def test_log_softmax_and_softmax_large_inputs():
    """log_softmax / softmax of logits ±1e4 (and all-equal huge logits) are finite and exact."""
    logits = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        L = log_softmax(logits)
        P = softmax(logits.copy())
    np.testing.assert_allclose(L[0], [0.0, -2e4, -1e4])
    np.testing.assert_allclose(P[1], [1 / 3] * 3, rtol=1e-15)
    np.testing.assert_allclose(P[2], [1 / 3] * 3, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_feature_values_give_finite_results(dtype):
    """Feature values up to 1e6 (float32 or float64 X) give finite logits, probabilities that sum
    to 1, and finite log-probabilities."""
    rng = np.random.default_rng(3)
    model = random_model(rng, 4, 3)
    X = (rng.uniform(-1.0, 1.0, size=(30, 3)) * 1e6).astype(dtype)
    P = model.predict_proba(X)
    assert np.all(np.isfinite(P)) and np.all(np.isfinite(model.predict_log_proba(X)))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)


# -- labels ---------------------------------------------------------------------------------------
def test_string_labels_map_through_classes():
    """String labels map to their positions in ``classes`` (numpy string scalars too); an unknown
    label is a ValueError naming that label and its row."""
    classes = sorted_classes(["dog", "cat", "bird", "cat", np.str_("dog")])
    assert classes == ["bird", "cat", "dog"]
    assert all(type(c) is str for c in classes)
    idx = labels_to_index(["cat", "dog", np.str_("bird"), "cat"], classes)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, [1, 2, 0, 1])
    np.testing.assert_array_equal(labels_to_index(np.array(["dog", "bird"]), classes), [2, 0])
    with pytest.raises(ValueError, match=r"'fish'.*row 2"):
        labels_to_index(["cat", "dog", "fish"], classes)


def test_integer_labels_and_numpy_scalars():
    """sorted_classes returns plain Python ints in sorted order; numpy integer labels map like ints."""
    classes = sorted_classes(np.array([5, 2, 9, 2, 5]))
    assert classes == [2, 5, 9] and all(type(c) is int for c in classes)
    np.testing.assert_array_equal(labels_to_index(np.array([9, 2, 5], dtype=np.int32), classes), [2, 0, 1])
    with pytest.raises(ValueError, match="7"):
        labels_to_index([7], classes)


def test_predict_returns_labels():
    """predict returns the label (from ``classes``) of the arg-max column; class_index maps back."""
    classes = ["bird", "cat", "dog"]
    model = SoftmaxModel(np.eye(3), np.zeros(3), classes)
    X = np.array([[0.0, 0.0, 5.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    pred = model.predict(X)
    assert list(pred) == ["dog", "bird", "cat"]
    np.testing.assert_array_equal(model.class_index(pred), [2, 0, 1])
    with pytest.raises(ValueError, match="'cow'"):
        model.class_index(["cow"])
    # one row given as a 1-d vector
    assert list(model.predict(np.array([0.0, 3.0, 0.0]))) == ["cat"]


def test_model_validates_shapes():
    """A SoftmaxModel refuses 1-d coef, a wrong-sized intercept, too few/duplicate classes, and
    X with the wrong number of columns; intercept=None means zeros."""
    with pytest.raises(ValueError):
        SoftmaxModel(np.zeros(3), np.zeros(3), [0, 1, 2])
    with pytest.raises(ValueError):
        SoftmaxModel(np.zeros((3, 2)), np.zeros(2), [0, 1, 2])
    with pytest.raises(ValueError):
        SoftmaxModel(np.zeros((3, 2)), np.zeros(3), [0, 1])
    with pytest.raises(ValueError):
        SoftmaxModel(np.zeros((2, 2)), np.zeros(2), [1, 1])
    with pytest.raises(ValueError):
        SoftmaxModel(np.zeros((1, 2)), np.zeros(1), [0])
    m = SoftmaxModel(np.zeros((2, 2)), None, [0, 1])
    np.testing.assert_array_equal(m.intercept, [0.0, 0.0])
    with pytest.raises(ValueError, match="expects"):
        m.predict_proba(np.zeros((4, 3)))


def test_model_copies_its_inputs():
    """The model holds float64 copies: mutating the arrays passed in does not change it."""
    coef = np.ones((2, 3), dtype=np.float32)
    intercept = np.zeros(2)
    m = SoftmaxModel(coef, intercept, [0, 1])
    coef[0, 0] = 7.0
    intercept[0] = 7.0
    assert m.coef.dtype == np.float64 and m.coef[0, 0] == 1.0 and m.intercept[0] == 0.0


# -- scikit-learn interop -------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 4])
def test_to_sklearn_predict_proba_matches(n_classes):
    """to_sklearn() gives a LogisticRegression whose predict_proba, predict and decision classes
    equal ours (C = 2 uses scikit-learn's single-row binary form)."""
    rng = np.random.default_rng(10 + n_classes)
    classes = ["a", "b", "c", "d"][:n_classes]
    model = random_model(rng, n_classes, 5, scale=2.0, classes=classes)
    X = rng.normal(size=(100, 5)) * 2.0
    est = model.to_sklearn()
    assert list(est.classes_) == classes
    assert est.coef_.shape == ((1, 5) if n_classes == 2 else (n_classes, 5))
    np.testing.assert_allclose(est.predict_proba(X), model.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(est.predict(X), model.predict(X))


# -- the core must not need Spark ---------------------------------------------------------------
CORE = ("__init__", "core/__init__", "io/__init__", "core/model", "core/loss", "io/model_io", "core/optim",
        "core/precondition", "core/errors", "core/penalty", "core/problem", "core/penalties/__init__",
        "core/penalties/base", "core/penalties/l2", "core/penalties/l1", "core/penalties/bounds",
        "core/penalties/separable", "core/class_shift", "solvers/registry",
        "solvers/__init__", "solvers/base", "solvers/lbfgs", "solvers/sgd", "solvers/newton",
        "solvers/newton_cg", "solvers/auto", "solvers/prox_newton", "solvers/owlqn", "solvers/orthant_newton", "core/curvature",
        "io/storage", "io/uris", "io/local_storage", "io/publish",
        "io/hadoop_storage",  # imports py4j / pyspark only inside its functions
        "core/labels", "version",
        "io/mllib_io", "io/mllib_layout", "io/spark_ml_io")  # the format registry's readers (model_io.FORMATS): pyarrow, no Spark


def _module_level_imports(tree):
    """Import statements executed at import time (module level, also inside if/try blocks)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, field, []))
        elif isinstance(node, ast.ExceptHandler):
            todo.extend(node.body)


def test_core_does_not_import_pyspark():
    """The numpy core (package __init__, model, loss, model_io, optim, lbfgs, precondition, errors,
    atomic) imports no pyspark at import time, and its package-relative imports stay inside the
    core — so importing it never pulls Spark in (checked statically: fast and independent of what
    other tests imported)."""
    import softmax_spark

    root = os.path.dirname(softmax_spark.__file__)
    for name in CORE:
        with open(os.path.join(root, name + ".py"), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in _module_level_imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif node.level == 0:
                targets = [node.module or ""]
            else:  # relative: from .x import y  /  from . import x  (resolved from the module's package)
                targets = [node.module] if node.module else [alias.name for alias in node.names]
                package = name.split("/")[:-1]
                base = package[: len(package) - (node.level - 1)]
                for target in targets:
                    path = "/".join(base + target.split("."))
                    assert path in CORE or path + "/__init__" in CORE or path.rsplit("/", 1)[0] in CORE, (
                        f"{name}.py imports non-core .{target}")
                continue
            for target in targets:
                assert not target.startswith(("pyspark", "py4j")), f"{name}.py imports {target}"
                path = target[len("softmax_spark."):].replace(".", "/")
                assert not target.startswith("softmax_spark.") or path in CORE or path + "/__init__" in CORE, (
                    f"{name}.py imports non-core {target}")
