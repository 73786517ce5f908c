"""Evaluation plots as PNG files (matplotlib, Agg backend: no display needed).

Each function draws one figure from plain numbers (what ``softmax_spark.metrics`` and the
model's ``history`` hold) and writes it to a local ``path``; no Spark here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_confusion_matrix", "plot_reliability_diagram", "plot_training_curve"]

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


def plot_reliability_diagram(calibration: dict, path: str, ece: float | None = None) -> str:
    """Top-label reliability diagram: accuracy vs mean confidence per bin, bin sizes below.

    calibration : ``MetricsAccumulator.calibration()`` — bin_edges (n_bins + 1,), count,
        mean_confidence and accuracy (n_bins,), None for empty bins.
    """
    plt = _pyplot()
    edges = np.asarray(calibration["bin_edges"], dtype=np.float64)  # (n_bins + 1,)
    count = np.asarray(calibration["count"], dtype=np.int64)  # (n_bins,)
    accuracy = np.array([np.nan if a is None else a for a in calibration["accuracy"]])  # (n_bins,)
    confidence = np.array([np.nan if c is None else c for c in calibration["mean_confidence"]])
    centers = 0.5 * (edges[:-1] + edges[1:])
    widths = np.diff(edges)
    fig, (ax, ax_count) = plt.subplots(
        2, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    try:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
        ax.bar(centers, np.nan_to_num(accuracy), width=widths, edgecolor="black", alpha=0.7, label="accuracy")
        ax.plot(confidence, accuracy, marker="o", color="darkred", label="accuracy at mean confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        title = "Reliability diagram (top label)"
        ax.set_title(title if ece is None else f"{title}, ECE = {ece:.4f}")
        ax.legend(loc="upper left")
        ax_count.bar(centers, count, width=widths, edgecolor="black", color="grey")
        ax_count.set_xlabel("confidence (max probability)")
        ax_count.set_ylabel("rows")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def plot_training_curve(history: list, path: str) -> str | None:
    """Objective (and validation_loss where recorded) per iteration; None (no file) when
    ``history`` has no record with both ``iteration`` and ``objective``.

    history : list of dicts with keys iteration, objective, validation_loss (optional), ...
    """
    records = [r for r in history if r.get("iteration") is not None and r.get("objective") is not None]
    if not records:
        return None
    plt = _pyplot()
    iterations = np.array([r["iteration"] for r in records], dtype=np.float64)  # (n_records,)
    objective = np.array([r["objective"] for r in records], dtype=np.float64)
    validation = [(r["iteration"], r["validation_loss"]) for r in records if r.get("validation_loss") is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        ax.plot(iterations, objective, marker=".", label="training objective")
        if validation:
            v_iter, v_loss = np.array(validation, dtype=np.float64).T
            ax.plot(v_iter, v_loss, marker=".", label="validation loss")
        if np.all(objective > 0) and objective.max() / objective.min() > 100:
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.set_title("Training curve")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
