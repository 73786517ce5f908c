"""MetricsAccumulator against scikit-learn's metric functions (no Spark)."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from softmax_spark.core.loss import softmax
from softmax_spark.core.metrics import MetricsAccumulator, default_top_k, format_metrics_table

N_CLASSES = 4


def random_predictions(rng, n_rows=600, n_classes=N_CLASSES, absent_class=None):
    """(proba (n_rows, n_classes), y_index (n_rows,)) with labels correlated with the scores."""
    logits = rng.normal(scale=2.0, size=(n_rows, n_classes))
    y_index = np.where(rng.random(n_rows) < 0.6, logits.argmax(axis=1), rng.integers(0, n_classes, n_rows))
    if absent_class is not None:  # never true and never predicted
        logits[:, absent_class] -= 50.0
        y_index[y_index == absent_class] = (absent_class + 1) % n_classes
    return softmax(logits), y_index


def ece_by_loop(proba, y_index, n_bins=15):
    """Top-label ECE written row by row, for reference."""
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        members = [i for i in range(len(proba)) if lo < proba[i].max() <= hi]
        if members:
            confidence = np.mean([proba[i].max() for i in members])
            accuracy = np.mean([proba[i].argmax() == y_index[i] for i in members])
            total += len(members) / len(proba) * abs(accuracy - confidence)
    return total


def test_metrics_equal_sklearn(rng):
    proba, y_index = random_predictions(rng)
    predicted = proba.argmax(axis=1)
    labels = list(range(N_CLASSES))
    result = MetricsAccumulator(N_CLASSES).add(proba, y_index).result()

    assert result["labelled_rows"] == len(y_index)
    assert result["log_loss"] == pytest.approx(log_loss(y_index, proba, labels=labels), rel=1e-12)
    assert result["accuracy"] == pytest.approx(accuracy_score(y_index, predicted), abs=1e-15)
    assert list(result["top_k_accuracy"]) == ["1", "2", "3", "4"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k = n_classes: "meaningless" warning
        for k in default_top_k(N_CLASSES):
            expected = top_k_accuracy_score(y_index, proba, k=k, labels=labels)
            assert result["top_k_accuracy"][str(k)] == pytest.approx(expected, abs=1e-15)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_index, predicted, labels=labels, zero_division=0
    )
    per_class = result["per_class"]
    np.testing.assert_allclose([c["precision"] for c in per_class], precision, rtol=1e-12)
    np.testing.assert_allclose([c["recall"] for c in per_class], recall, rtol=1e-12)
    np.testing.assert_allclose([c["f1"] for c in per_class], f1, rtol=1e-12)
    assert [c["support"] for c in per_class] == support.tolist()
    assert result["macro_f1"] == pytest.approx(f1_score(y_index, predicted, average="macro"), rel=1e-12)
    assert result["weighted_f1"] == pytest.approx(f1_score(y_index, predicted, average="weighted"), rel=1e-12)
    assert result["confusion_matrix"]["counts"] == confusion_matrix(y_index, predicted, labels=labels).tolist()
    assert result["brier_score"] == pytest.approx(brier_score_loss(y_index, proba, labels=labels), rel=1e-12)
    assert result["expected_calibration_error"] == pytest.approx(ece_by_loop(proba, y_index), rel=1e-10)


def test_macro_f1_skips_classes_absent_from_truth_and_predictions(rng):
    proba, y_index = random_predictions(rng, absent_class=2)
    predicted = proba.argmax(axis=1)
    assert 2 not in set(y_index) | set(predicted)
    result = MetricsAccumulator(N_CLASSES).add(proba, y_index).result(["a", "b", "c", "d"])
    assert result["macro_f1"] == pytest.approx(f1_score(y_index, predicted, average="macro"), rel=1e-12)
    assert result["per_class"][2] == {"class": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_merge_and_bytes_round_trip_equal_one_pass(rng):
    proba, y_index = random_predictions(rng, n_rows=500)
    whole = MetricsAccumulator(N_CLASSES, top_k=(1, 3)).add(proba, y_index).add_unknown(7)
    merged = MetricsAccumulator(N_CLASSES, top_k=(1, 3))
    for chunk in np.array_split(np.arange(500), [0, 13, 200, 200, 499]):  # includes empty chunks
        part = MetricsAccumulator(N_CLASSES, top_k=(1, 3)).add(proba[chunk], y_index[chunk])
        merged.merge(MetricsAccumulator.from_bytes(part.to_bytes()))
    merged.merge(MetricsAccumulator(N_CLASSES, top_k=(1, 3)).add_unknown(7))
    a, b = whole.result(), merged.result()
    assert a["confusion_matrix"] == b["confusion_matrix"]
    assert a["calibration"]["count"] == b["calibration"]["count"]
    assert b["unknown_label_rows"] == 7 and b["labelled_rows"] == 500
    for key in ("log_loss", "brier_score", "expected_calibration_error", "macro_f1", "weighted_f1"):
        assert b[key] == pytest.approx(a[key], rel=1e-12)
    assert a["top_k_accuracy"] == b["top_k_accuracy"]


def test_no_labelled_rows_gives_none_not_nan():
    result = MetricsAccumulator(3).add_unknown(5).result()
    assert result["labelled_rows"] == 0 and result["unknown_label_rows"] == 5
    assert result["log_loss"] is None and result["accuracy"] is None and result["macro_f1"] is None
    assert set(result["calibration"]["accuracy"]) == {None}
    assert "n/a" in format_metrics_table(result)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="top-k"):
        MetricsAccumulator(3, top_k=(1, 4))
    with pytest.raises(ValueError, match="shape"):
        MetricsAccumulator(3).add(np.full((2, 4), 0.25), np.array([0, 1]))
    with pytest.raises(ValueError, match="merge"):
        MetricsAccumulator(3).merge(MetricsAccumulator(4))


def test_table_lists_metrics_and_classes(rng):
    proba, y_index = random_predictions(rng, n_rows=50)
    table = format_metrics_table(MetricsAccumulator(N_CLASSES).add(proba, y_index).result(["x", "y", "z", "w"]))
    expected_lines = ("log-loss", "accuracy", "top-2 accuracy", "macro F1", "Brier score", "ECE (15 bins)", "confusion")
    for text in expected_lines:
        assert text in table
    assert table.count("\nw ") == 2  # one per-class row and one confusion-matrix row
