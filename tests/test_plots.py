"""The PNG plots are written, non-empty, and skipped when there is nothing to draw."""

from softmax_spark.loss import softmax
from softmax_spark.metrics import MetricsAccumulator
from softmax_spark.plots import plot_confusion_matrix, plot_reliability_diagram, plot_training_curve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG_SIGNATURE and len(data) > 2000


def test_confusion_and_reliability_plots(tmp_path, rng):
    proba = softmax(rng.normal(size=(300, 3)))
    y_index = rng.integers(0, 3, 300)
    metrics = MetricsAccumulator(3).add(proba, y_index).result(["cat", "dog", "eel"])
    counts = metrics["confusion_matrix"]["counts"]
    assert_png(plot_confusion_matrix(counts, ["cat", "dog", "eel"], str(tmp_path / "cm.png")))
    ece = metrics["expected_calibration_error"]
    assert_png(plot_reliability_diagram(metrics["calibration"], str(tmp_path / "rel.png"), ece))


def test_confusion_plot_many_classes(tmp_path, rng):
    counts = rng.integers(0, 100, size=(60, 60))
    assert_png(plot_confusion_matrix(counts, [f"c{i}" for i in range(60)], str(tmp_path / "cm60.png")))


def test_training_curve_with_and_without_validation(tmp_path):
    history = [{"iteration": i, "objective": 2.0 / (i + 1), "grad_norm": 1.0, "seconds": 0.1} for i in range(20)]
    assert_png(plot_training_curve(history, str(tmp_path / "train.png")))
    for i, record in enumerate(history):
        record["validation_loss"] = 2.2 / (i + 1) if i % 5 == 0 else None
    assert_png(plot_training_curve(history, str(tmp_path / "train_val.png")))


def test_training_curve_skipped_without_history(tmp_path):
    assert plot_training_curve([], str(tmp_path / "none.png")) is None
    assert not (tmp_path / "none.png").exists()
