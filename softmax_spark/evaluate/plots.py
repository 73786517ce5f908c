"""Evaluation plots as PNG files (matplotlib, Agg backend: no display needed).

Each function draws one figure from plain numbers (what ``softmax_spark.core.metrics`` and the
model's ``history`` hold) and writes it to a local ``path``; no Spark here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_confusion_matrix", "plot_reliability_diagram", "plot_training_curve", "plot_validation_curve", "reliability_figure",
           "training_curve_figure"]

_ANNOTATE_MAX_CLASSES = 20
_TICK_LABELS_MAX_CLASSES = 50


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(counts, class_names, path: str) -> str:
    """Heatmap of the row-normalised confusion matrix (colour = share of the true class),
    annotated with the counts for up to 20 classes.

    counts : array-like of shape (n_classes, n_classes), [true, predicted]
    class_names : list of n_classes labels
    """
    plt = _pyplot()
    counts = np.asarray(counts, dtype=np.int64)
    n_classes = counts.shape[0]
    row_share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)  # (n_classes, n_classes)
    size = min(4.0 + 0.45 * n_classes, 20.0)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    try:
        image = ax.imshow(row_share, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax, label="share of the true class")
        if n_classes <= _TICK_LABELS_MAX_CLASSES:
            names = [str(n) for n in class_names]
            ax.set_xticks(range(n_classes), names, rotation=45, ha="right")
            ax.set_yticks(range(n_classes), names)
        if n_classes <= _ANNOTATE_MAX_CLASSES:
            for i in range(n_classes):
                for j in range(n_classes):
                    ax.text(
                        j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if row_share[i, j] > 0.5 else "black",
                    )
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(f"Confusion matrix ({int(counts.sum())} rows)")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


# a bin with fewer rows than this gets a hatched bar: its accuracy is a noisy estimate
FEW_ROWS = 30


def plot_reliability_diagram(calibration: dict, path: str, ece: float | None = None) -> str:
    """Top-label reliability diagram: accuracy vs mean confidence per bin, with every bin's
    size visible, and the rows per bin below on a log scale.

    Above, each non-empty bin's accuracy bar is shaded by its row count (log scale: the fullest
    bin darkest), hatched when it holds fewer than ``FEW_ROWS`` rows, and annotated ``n=<rows>`` at its foot;
    the accuracy-at-mean-confidence markers have an area ∝ √rows. Below, the rows per bin
    (log-scale axis, so a bin of 3 rows next to one of 430 still shows), each bar annotated with
    its count. Typical case: most rows in the top bin, a few scattered below it.

    calibration : ``MetricsAccumulator.calibration()`` — bin_edges (n_bins + 1,), count,
        mean_confidence and accuracy (n_bins,), None for empty bins.
    """
    plt = _pyplot()
    fig = reliability_figure(calibration, ece)
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def reliability_figure(calibration: dict, ece: float | None = None):
    """The matplotlib Figure of ``plot_reliability_diagram`` (axes: diagram, rows per bin);
    the caller closes it."""
    plt = _pyplot()
    from matplotlib.colors import to_rgba

    edges = np.asarray(calibration["bin_edges"], dtype=np.float64)  # (n_bins + 1,)
    count = np.asarray(calibration["count"], dtype=np.int64)  # (n_bins,)
    accuracy = np.array([np.nan if a is None else a for a in calibration["accuracy"]], dtype=np.float64)
    confidence = np.array([np.nan if c is None else c for c in calibration["mean_confidence"]], dtype=np.float64)
    centers = 0.5 * (edges[:-1] + edges[1:])
    widths = np.diff(edges)
    filled = count > 0
    total = int(count.sum())
    # shade: 0.2 (one row) … 1.0 (the fullest bin), log scale so small bins stay visible
    top = max(int(count.max(initial=0)), 1)
    shade = 0.2 + 0.8 * np.log1p(count) / np.log1p(top)
    labels = [f"n={c}" for c in count]
    vertical = max((len(t) for t, f in zip(labels, filled) if f), default=0) > 5 or len(count) > 20
    fig, (ax, ax_count) = plt.subplots(
        2, 1, figsize=(6.5, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    try:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
        for i in np.flatnonzero(filled):
            ax.bar(centers[i], accuracy[i], width=widths[i], color=to_rgba("tab:blue", shade[i]),
                   edgecolor="black", linewidth=0.8, hatch="///" if count[i] < FEW_ROWS else None)
            # at the foot of the bar, clear of the markers near its top
            ax.text(centers[i], 0.015, labels[i], ha="center", va="bottom", fontsize=7,
                    rotation=90 if vertical else 0, bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        sizes = 15 + 185 * np.sqrt(count[filled] / top)
        ax.scatter(confidence[filled], accuracy[filled], s=sizes, color="darkred", zorder=3,
                   label="accuracy at mean confidence (area ∝ √rows)")
        ax.plot(confidence[filled], accuracy[filled], color="darkred", linewidth=1, zorder=2)
        ax.bar([np.nan], [np.nan], color=to_rgba("tab:blue", 0.6), edgecolor="black",
               label="accuracy per bin (shade: rows)")
        ax.bar([np.nan], [np.nan], color="white", edgecolor="black", hatch="///",
               label=f"bin with < {FEW_ROWS} rows")
        # room for the largest marker (radius ≈ 7.5 pt ≈ 0.025 of the axes' width) at confidence 1
        # and at accuracy 0 or 1: with xlim (0, 1) the top bin's marker was cut by the right edge
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.04, 1.12)
        ax.set_ylabel("accuracy")
        title = f"Reliability diagram (top label, {total} rows)"
        ax.set_title(title if ece is None else f"{title}, ECE = {ece:.4f}")
        ax.legend(loc="upper left", fontsize=8)
        ax_count.bar(centers[filled], count[filled], width=widths[filled], edgecolor="black", color="grey")
        ax_count.set_yscale("log")
        ax_count.set_ylim(0.7, top * 6)
        for i in np.flatnonzero(filled):
            ax_count.text(centers[i], count[i] * 1.15, str(count[i]), ha="center", va="bottom", fontsize=7,
                          rotation=90 if vertical else 0)
        ax_count.set_xlabel("confidence (max probability)")
        ax_count.set_ylabel("rows (log scale)")
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    return fig


def plot_training_curve(history: list, path: str) -> str | None:
    """Objective (and validation_loss where recorded) per iteration, with the iteration whose
    parameters the model holds marked (the record with ``"returned": True``, set by
    ``loop.TrainingLoop``: early stopping may return an earlier iterate than the last); below it,
    on a log scale, the distance to the best objective J − J_best (J_best the lowest recorded
    objective) and the gradient norm (``grad_norm``) where recorded, so the convergence of the
    last iterations stays visible (on a linear axis a Newton fit looks flat after a few
    iterations). None (no file) when ``history`` has no record with both ``iteration`` and
    ``objective``.

    history : list of dicts with keys iteration, objective, validation_loss (optional),
        grad_norm (optional), returned (optional), ...
    """
    fig = training_curve_figure(history)
    if fig is None:
        return None
    plt = _pyplot()
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def training_curve_figure(history: list):
    """The matplotlib Figure of ``plot_training_curve`` (two axes: loss, then the log-scale
    convergence panel), or None without records; the caller closes it."""
    records = [r for r in history if r.get("iteration") is not None and r.get("objective") is not None]
    if not records:
        return None
    plt = _pyplot()
    iterations = np.array([r["iteration"] for r in records], dtype=np.float64)  # (n_records,)
    objective = np.array([r["objective"] for r in records], dtype=np.float64)
    validation = [(r["iteration"], r["validation_loss"]) for r in records if r.get("validation_loss") is not None]
    grads = [(r["iteration"], r["grad_norm"]) for r in records if r.get("grad_norm") is not None]
    returned = next((r for r in records if r.get("returned")), None)
    fig, (ax, ax_gap) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True, gridspec_kw={"height_ratios": [1.2, 1]})
    try:
        ax.plot(iterations, objective, marker=".", label="training objective J")
        if validation:
            v_iter, v_loss = np.array(validation, dtype=np.float64).T
            ax.plot(v_iter, v_loss, marker=".", label="validation loss")
        if returned is not None:
            # early stopping keeps the best validation iterate: show which one the model is
            last = iterations.max()
            where = "last" if returned["iteration"] == last else f"of {int(last)}"
            for a in (ax, ax_gap):
                a.axvline(returned["iteration"], color="tab:red", linestyle="--", linewidth=1,
                          label=f"returned model: iteration {returned['iteration']} ({where})" if a is ax else None)
            y = returned.get("validation_loss")
            ax.plot([returned["iteration"]], [returned["objective"] if y is None else y], marker="*",
                    markersize=14, color="tab:red", linestyle="none")
        if np.all(objective > 0) and objective.max() / objective.min() > 100:
            ax.set_yscale("log")
        ax.set_ylabel("loss")
        ax.set_title("Training curve")
        ax.grid(True, alpha=0.3)
        ax.legend()

        # J − J_best is 0 at the best iterate (not drawable on a log axis): the points above it
        best = float(np.min(objective))
        gap = objective - best
        shown = gap > 0
        if shown.any():
            ax_gap.plot(iterations[shown], gap[shown], marker=".", color="tab:blue",
                        label=f"J − J_best (J_best = {best:.10g})")
        if grads:
            g_iter, g_norm = np.array(grads, dtype=np.float64).T
            positive = g_norm > 0
            ax_gap.plot(g_iter[positive], g_norm[positive], marker=".", color="tab:green", label="gradient norm")
        if shown.any() or grads:
            ax_gap.set_yscale("log")
            ax_gap.legend(fontsize=8)
        ax_gap.set_xlabel("iteration")
        ax_gap.set_ylabel("convergence (log scale)")
        ax_gap.grid(True, which="major", alpha=0.3)
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    return fig


def plot_validation_curve(path_rows: list, path: str, chosen: int | None = None, metric: str = "logLoss") -> str:
    """Mean validation metric (± one std over folds) against the penalty (log x axis), the chosen
    value marked. ``path_rows``: the path table's dicts (regParam or l2, mean, std); ``chosen``:
    the index of the chosen row."""
    key = "l2" if "l2" in path_rows[0] else "regParam"
    x = np.array([r[key] for r in path_rows], dtype=np.float64)
    mean = np.array([r["mean"] for r in path_rows], dtype=np.float64)
    std = np.array([r["std"] for r in path_rows], dtype=np.float64)
    order = np.argsort(x)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        ax.errorbar(x[order], mean[order], yerr=std[order], marker=".", capsize=3, label=f"mean validation {metric}")
        if chosen is not None:
            ax.axvline(x[chosen], color="tab:red", linestyle="--", linewidth=1,
                       label=f"chosen {key} = {x[chosen]:.4g}")
            ax.plot([x[chosen]], [mean[chosen]], marker="*", markersize=14, color="tab:red", linestyle="none")
        if np.all(x > 0):
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.set_title("Cross-validation path")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
