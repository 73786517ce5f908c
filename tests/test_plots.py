"""The PNG plots are written, non-empty, and skipped when there is nothing to draw."""

from softmax_spark.core.loss import softmax
from softmax_spark.core.metrics import MetricsAccumulator
from softmax_spark.evaluate.plots import plot_confusion_matrix, plot_reliability_diagram, plot_training_curve

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


def _skewed_calibration():
    """450 rows, 430 of them in the top bin (confidence ≥ 14/15), the 20 others spread below."""
    import numpy as np

    edges = np.linspace(0.0, 1.0, 16)
    count = [0] * 15
    for bin_index, rows in {14: 430, 13: 9, 12: 5, 10: 3, 8: 2, 6: 1}.items():
        count[bin_index] = rows
    confidence = [float(edges[i] + 0.5 / 15) if count[i] else None for i in range(15)]
    accuracy = [min(1.0, c + 0.02) if c is not None else None for c in confidence]
    return {"n_bins": 15, "bin_edges": edges.tolist(), "count": count, "mean_confidence": confidence,
            "accuracy": accuracy}


def test_reliability_diagram_shows_the_size_of_every_bin(tmp_path):
    """With 430 of 450 rows in the top bin, every non-empty bin's row count is written in the
    figure (on its accuracy bar and on its bar of the row histogram), the histogram's axis is
    logarithmic (a 1-row bin stays visible next to 430 rows), and bins of few rows are hatched."""
    import matplotlib.pyplot as plt

    from softmax_spark.evaluate.plots import FEW_ROWS, reliability_figure

    calibration = _skewed_calibration()
    fig = reliability_figure(calibration, ece=0.01)
    try:
        diagram, rows = fig.axes
        assert "450 rows" in diagram.get_title()
        assert sorted(t.get_text() for t in diagram.texts) == sorted(
            f"n={c}" for c in calibration["count"] if c)
        assert sorted(t.get_text() for t in rows.texts) == sorted(str(c) for c in calibration["count"] if c)
        assert rows.get_yscale() == "log"
        assert rows.get_ylim()[0] < 1  # a bin of one row has a visible bar
        hatched = sorted(round(p.get_x() + p.get_width() / 2, 6) for p in diagram.patches
                         if p.get_hatch() and p.get_height() == p.get_height() and p.get_width() > 0)
        few = sorted(round(c, 6) for c, n in zip([(a + b) / 2 for a, b in zip(calibration["bin_edges"],
                                                                              calibration["bin_edges"][1:])],
                                                    calibration["count"]) if 0 < n < FEW_ROWS)
        assert hatched == few
    finally:
        plt.close(fig)
    assert_png(plot_reliability_diagram(calibration, str(tmp_path / "skewed.png"), 0.01))


def test_training_curve_marks_the_returned_iteration(tmp_path):
    """Early stopping returned iteration 6 of 12 (issue 16 item 14): the plot draws a vertical
    line there, labelled with the iteration, and a marker on the validation loss it had."""
    import matplotlib.pyplot as plt

    from softmax_spark.evaluate.plots import training_curve_figure

    history = [{"iteration": i, "objective": 1.0 / (i + 1), "validation_loss": 0.5 + (i - 6) ** 2 / 100}
               for i in range(1, 13)]
    history[5]["returned"] = True
    fig = training_curve_figure(history)
    try:
        ax, _ = fig.axes
        labels = [text.get_text() for text in ax.get_legend().get_texts()]
        assert "returned model: iteration 6 (of 12)" in labels
        marked = [line for line in ax.get_lines() if line.get_label().startswith("returned model")]
        assert list(marked[0].get_xdata()) == [6, 6]
        stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
        assert list(stars[0].get_xdata()) == [6] and list(stars[0].get_ydata()) == [0.5]
    finally:
        plt.close(fig)
    path = plot_training_curve(history, str(tmp_path / "returned.png"))
    assert_png(path)
    # without a returned record (an old model's history) nothing is marked
    for record in history:
        record.pop("returned", None)
    fig = training_curve_figure(history)
    try:
        assert not any(line.get_label().startswith("returned") for line in fig.axes[0].get_lines())
    finally:
        plt.close(fig)


def test_training_curve_shows_convergence_on_a_log_scale():
    """A Newton-like history (J − J* shrinking from 1e-1 to 1e-14) looks flat on a linear axis
    after a few iterations; the second panel draws J − J_best and the gradient norm on a log
    scale, every point with a positive gap included, so the last iterations stay readable."""
    import matplotlib.pyplot as plt
    import numpy as np

    from softmax_spark.evaluate.plots import training_curve_figure

    gaps = [1e-1, 3e-2, 5e-3, 2e-4, 1e-6, 1e-9, 1e-14, 0.0]
    history = [{"iteration": i + 1, "objective": 0.25 + g, "grad_norm": 10 * g + 1e-16} for i, g in enumerate(gaps)]
    fig = training_curve_figure(history)
    try:
        _, gap_ax = fig.axes
        assert gap_ax.get_yscale() == "log"
        lines = {line.get_label().split(" (")[0]: line for line in gap_ax.get_lines()}
        gap_line = lines["J − J_best"]
        assert list(gap_line.get_xdata()) == [1, 2, 3, 4, 5, 6, 7]  # the best iterate (gap 0) is not drawable
        np.testing.assert_allclose(gap_line.get_ydata(), gaps[:-1], rtol=1e-3, atol=0)  # 0.25 + g − 0.25 rounds
        assert list(lines["gradient norm"].get_xdata()) == list(range(1, 9))
        low, high = gap_ax.get_ylim()
        assert low <= 1e-14 and high >= 1e-1
    finally:
        plt.close(fig)


def test_reliability_markers_lie_inside_the_axes():
    """Every accuracy-at-confidence marker, at its full drawn size, lies inside the diagram's
    axes — including the top bin's (largest) marker at confidence ≈ 0.98, accuracy 1, and markers
    at accuracy 0 (the top-right one used to be cut by the right edge)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from softmax_spark.evaluate.plots import reliability_figure

    calibration = _skewed_calibration()
    calibration["mean_confidence"][14] = 0.995
    calibration["accuracy"][14] = 1.0
    calibration["accuracy"][6] = 0.0
    fig = reliability_figure(calibration, ece=0.01)
    try:
        fig.canvas.draw()
        diagram = fig.axes[0]
        box = diagram.get_window_extent()
        (scatter,) = diagram.collections
        centres = diagram.transData.transform(scatter.get_offsets())
        radii = np.sqrt(scatter.get_sizes()) / 2 * fig.dpi / 72  # marker size is an area in pt²
        assert len(centres) == len(radii) == sum(1 for c in calibration["count"] if c)
        for (x, y), r in zip(centres, radii):
            assert box.x0 <= x - r and x + r <= box.x1 and box.y0 <= y - r and y + r <= box.y1, (x, y, r, box)
    finally:
        plt.close(fig)
