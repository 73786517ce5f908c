"""Classification metrics from mergeable per-block sums, pure numpy (no Spark).

``MetricsAccumulator`` is filled block by block inside Spark tasks (``add``), merged across
partitions (``merge``, or ``to_bytes``/``from_bytes`` to ship it as one binary value) and turned
into metrics once, on the driver (``result``). Every quantity it keeps is a sum or a count, so
splitting the rows differently never changes the result (up to float rounding).

Conventions
-----------
- ``proba``: ndarray of shape (n_rows, n_classes), rows sum to 1, columns in the model's
  ``classes`` order.
- ``y_index``: ndarray of shape (n_rows,), integer positions of the true labels in ``classes``.
- The predicted class of a row is ``argmax(proba)`` (the first one on a tie), as the scoring
  kernel writes it.

Definitions (N = number of rows with a known label)
---------------------------------------------------
- log-loss: mean of −log(clip(p_true, ε, 1 − ε)), ε = float64 machine epsilon (as scikit-learn).
- accuracy: fraction of rows whose predicted class is the true one.
- top-k accuracy: fraction of rows whose true class has fewer than k classes with a strictly
  higher probability (ties count as hits; scikit-learn breaks ties by column order instead).
- per class c: precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN), each 0 when
  its denominator is 0 (scikit-learn's ``zero_division=0``); support = TP+FN.
- macro F1: unweighted mean of F1 over the classes present in the truth or the predictions
  (scikit-learn's default label set); weighted F1: mean of F1 weighted by support.
- confusion matrix: counts[i, j] = rows of true class i predicted as class j.
- Brier score: mean over rows of Σ_c (p_c − onehot_c)², in [0, 2] (no halving, also for C = 2).
- expected calibration error (top-label): confidence = max_c p_c, in ``n_bins`` equal-width
  bins (b/n_bins, (b+1)/n_bins]; ECE = Σ_b (n_b/N)·|accuracy_b − mean confidence_b|.
"""

from __future__ import annotations

import io
import math

import numpy as np

__all__ = ["MetricsAccumulator", "default_top_k", "format_metrics_table", "DEFAULT_CALIBRATION_BINS"]

DEFAULT_CALIBRATION_BINS = 15
_EPS = float(np.finfo(np.float64).eps)


def default_top_k(n_classes: int) -> tuple[int, ...]:
    """k = 1 .. min(5, n_classes)."""
    return tuple(range(1, min(5, n_classes) + 1))


class MetricsAccumulator:
    """Mergeable sums over rows for every metric of this module.

    Attributes (all sums over rows with a known label unless said otherwise)
    -------------------------------------------------------------------------
    confusion : ndarray of shape (n_classes, n_classes), int64; [true, predicted] counts
    log_loss_sum : float, Σ −log(clip(p_true, ε, 1 − ε))
    brier_sum : float, Σ Σ_c (p_c − onehot_c)²
    top_k : ndarray of shape (n_k,), int64, the k values
    top_k_hits : ndarray of shape (n_k,), int64, rows whose true class is within the top k
    bin_count : ndarray of shape (n_bins,), int64, rows per confidence bin
    bin_confidence_sum : ndarray of shape (n_bins,), Σ max_c p_c per bin
    bin_correct : ndarray of shape (n_bins,), int64, correctly predicted rows per bin
    unknown_label_rows : int, rows whose label is not one of the model's classes (not in any sum)
    """

    _ARRAYS = ("confusion", "top_k", "top_k_hits", "bin_count", "bin_confidence_sum", "bin_correct")

    def __init__(self, n_classes: int, top_k=None, n_bins: int = DEFAULT_CALIBRATION_BINS):
        if n_classes < 2:
            raise ValueError(f"n_classes must be ≥ 2, got {n_classes}")
        top_k = default_top_k(n_classes) if top_k is None else tuple(sorted(set(int(k) for k in top_k)))
        if not top_k or top_k[0] < 1 or top_k[-1] > n_classes:
            raise ValueError(f"top-k values must lie in 1..{n_classes} (the number of classes), got {list(top_k)}")
        if n_bins < 1:
            raise ValueError(f"n_bins must be ≥ 1, got {n_bins}")
        self.confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
        self.log_loss_sum = 0.0
        self.brier_sum = 0.0
        self.top_k = np.asarray(top_k, dtype=np.int64)
        self.top_k_hits = np.zeros(len(top_k), dtype=np.int64)
        self.bin_count = np.zeros(n_bins, dtype=np.int64)
        self.bin_confidence_sum = np.zeros(n_bins)
        self.bin_correct = np.zeros(n_bins, dtype=np.int64)
        self.unknown_label_rows = 0

    @property
    def n_classes(self) -> int:
        return self.confusion.shape[0]

    @property
    def n_bins(self) -> int:
        return self.bin_count.shape[0]

    @property
    def n_rows(self) -> int:
        """Rows with a known label (the N of every mean)."""
        return int(self.confusion.sum())

    # -- accumulation -----------------------------------------------------------------------
    def add(self, proba: np.ndarray, y_index: np.ndarray) -> "MetricsAccumulator":
        """Add one block of rows whose labels are known.

        proba : ndarray of shape (n_rows, n_classes); y_index : ndarray of shape (n_rows,).
        """
        proba = np.asarray(proba, dtype=np.float64)
        y_index = np.asarray(y_index, dtype=np.int64)
        n_rows, n_classes = proba.shape if proba.ndim == 2 else (len(proba), -1)
        if n_classes != self.n_classes or y_index.shape != (n_rows,):
            raise ValueError(
                f"proba of shape {proba.shape} and y_index of shape {y_index.shape}; expected "
                f"(n_rows, {self.n_classes}) and (n_rows,)"
            )
        if n_rows == 0:
            return self
        if y_index.min() < 0 or y_index.max() >= n_classes:
            raise ValueError(f"y_index outside 0..{n_classes - 1}")
        rows = np.arange(n_rows)
        predicted = proba.argmax(axis=1)  # (n_rows,)
        p_true = proba[rows, y_index]  # (n_rows,)

        self.confusion += np.bincount(
            y_index * n_classes + predicted, minlength=n_classes * n_classes
        ).reshape(n_classes, n_classes)
        self.log_loss_sum += float(-np.log(np.clip(p_true, _EPS, 1.0 - _EPS)).sum())
        residual = proba.copy()  # (n_rows, n_classes): p − onehot(y)
        residual[rows, y_index] -= 1.0
        self.brier_sum += float(np.einsum("ij,ij->", residual, residual))

        n_higher = (proba > p_true[:, None]).sum(axis=1)  # (n_rows,): classes ranked above the truth
        self.top_k_hits += (n_higher[None, :] < self.top_k[:, None]).sum(axis=1)

        confidence = proba[rows, predicted]  # (n_rows,)
        bins = np.clip(np.ceil(confidence * self.n_bins).astype(np.int64) - 1, 0, self.n_bins - 1)
        correct = predicted == y_index  # (n_rows,)
        self.bin_count += np.bincount(bins, minlength=self.n_bins)
        self.bin_confidence_sum += np.bincount(bins, weights=confidence, minlength=self.n_bins)
        self.bin_correct += np.bincount(bins[correct], minlength=self.n_bins)
        return self

    def add_unknown(self, n_rows: int) -> "MetricsAccumulator":
        """Count rows whose label the model does not know (kept out of every metric)."""
        self.unknown_label_rows += int(n_rows)
        return self

    def merge(self, other: "MetricsAccumulator") -> "MetricsAccumulator":
        """Add ``other``'s sums into this accumulator (same classes, k values and bins)."""
        if (
            other.confusion.shape != self.confusion.shape
            or other.n_bins != self.n_bins
            or not np.array_equal(other.top_k, self.top_k)
        ):
            raise ValueError("cannot merge accumulators of different classes, top-k or bins")
        self.confusion += other.confusion
        self.log_loss_sum += other.log_loss_sum
        self.brier_sum += other.brier_sum
        self.top_k_hits += other.top_k_hits
        self.bin_count += other.bin_count
        self.bin_confidence_sum += other.bin_confidence_sum
        self.bin_correct += other.bin_correct
        self.unknown_label_rows += other.unknown_label_rows
        return self

    # -- shipping between processes (no pickle) --------------------------------------------------
    def to_bytes(self) -> bytes:
        """The state as an ``.npz`` archive (plain arrays, readable with ``allow_pickle=False``)."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            scalars=np.array([self.log_loss_sum, self.brier_sum]),
            unknown_label_rows=np.array([self.unknown_label_rows], dtype=np.int64),
            **{name: getattr(self, name) for name in self._ARRAYS},
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "MetricsAccumulator":
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            confusion = archive["confusion"]
            acc = cls(confusion.shape[0], top_k=archive["top_k"].tolist(), n_bins=len(archive["bin_count"]))
            for name in cls._ARRAYS:
                setattr(acc, name, archive[name].copy())
            acc.log_loss_sum, acc.brier_sum = (float(v) for v in archive["scalars"])
            acc.unknown_label_rows = int(archive["unknown_label_rows"][0])
        return acc

    # -- results ------------------------------------------------------------------------------
    def per_class(self) -> dict[str, np.ndarray]:
        """precision, recall, f1 (float) and support, predicted (int), each of shape (n_classes,)."""
        true_positive = np.diag(self.confusion)
        support = self.confusion.sum(axis=1)
        predicted = self.confusion.sum(axis=0)
        return {
            "precision": _safe_ratio(true_positive, predicted),
            "recall": _safe_ratio(true_positive, support),
            "f1": _safe_ratio(2 * true_positive, support + predicted),
            "support": support,
            "predicted": predicted,
        }

    def calibration(self) -> dict:
        """Per-bin counts, mean confidence and accuracy (None for empty bins), and the edges."""
        count = self.bin_count
        nonempty = count > 0
        mean_confidence = np.where(nonempty, self.bin_confidence_sum / np.maximum(count, 1), np.nan)
        accuracy = np.where(nonempty, self.bin_correct / np.maximum(count, 1), np.nan)
        return {
            "n_bins": self.n_bins,
            "bin_edges": np.linspace(0.0, 1.0, self.n_bins + 1).tolist(),
            "count": count.tolist(),
            "mean_confidence": _nan_to_none(mean_confidence),
            "accuracy": _nan_to_none(accuracy),
        }

    def result(self, classes=None) -> dict:
        """All metrics as a JSON-serialisable dict; means are None when no row has a known label.

        ``classes`` (list of n_classes label values) names the per-class entries; default 0..C−1.
        """
        classes = list(range(self.n_classes)) if classes is None else list(classes)
        if len(classes) != self.n_classes:
            raise ValueError(f"{len(classes)} class names for {self.n_classes} classes")
        n = self.n_rows
        per_class = self.per_class()
        present = (per_class["support"] + per_class["predicted"]) > 0

        def mean(total):
            return float(total) / n if n else None

        return {
            "labelled_rows": n,
            "unknown_label_rows": int(self.unknown_label_rows),
            "log_loss": mean(self.log_loss_sum),
            "accuracy": mean(np.trace(self.confusion)),
            "top_k_accuracy": {str(int(k)): mean(h) for k, h in zip(self.top_k, self.top_k_hits)},
            "brier_score": mean(self.brier_sum),
            "expected_calibration_error": mean(np.abs(self.bin_correct - self.bin_confidence_sum).sum()),
            "macro_f1": float(per_class["f1"][present].mean()) if n else None,
            "weighted_f1": float(per_class["f1"] @ per_class["support"]) / n if n else None,
            "per_class": [
                {
                    "class": label,
                    "precision": float(per_class["precision"][c]),
                    "recall": float(per_class["recall"][c]),
                    "f1": float(per_class["f1"][c]),
                    "support": int(per_class["support"][c]),
                }
                for c, label in enumerate(classes)
            ],
            "confusion_matrix": {
                "axes": "rows = true class, columns = predicted class, both in 'classes' order",
                "classes": classes,
                "counts": self.confusion.tolist(),
            },
            "calibration": self.calibration(),
        }


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator elementwise, 0.0 where the denominator is 0. Shapes (n,)."""
    out = np.zeros(np.shape(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=np.asarray(denominator) != 0)
    return out


def _nan_to_none(values: np.ndarray) -> list:
    return [None if math.isnan(v) else float(v) for v in values]


def format_metrics_table(metrics: dict, max_classes: int = 50) -> str:
    """A readable plain-text report of ``MetricsAccumulator.result()`` (plus optional
    ``rows_scored``). The per-class table and confusion matrix show at most ``max_classes`` rows."""
    lines = []

    def number(value, digits=4):
        return "n/a" if value is None else f"{value:.{digits}f}"

    if "rows_scored" in metrics:
        lines.append(f"rows scored          {metrics['rows_scored']}")
    lines.append(f"labelled rows        {metrics['labelled_rows']}")
    lines.append(f"unknown-label rows   {metrics['unknown_label_rows']}")
    lines.append(f"log-loss             {number(metrics['log_loss'])}")
    lines.append(f"accuracy             {number(metrics['accuracy'])}")
    for k, value in metrics["top_k_accuracy"].items():
        lines.append(f"{'top-' + k + ' accuracy':<21}{number(value)}")
    lines.append(f"macro F1             {number(metrics['macro_f1'])}")
    lines.append(f"weighted F1          {number(metrics['weighted_f1'])}")
    lines.append(f"Brier score          {number(metrics['brier_score'])}")
    calibration_bins = metrics["calibration"]["n_bins"]
    lines.append(f"ECE ({calibration_bins} bins)        {number(metrics['expected_calibration_error'])}")

    per_class = metrics["per_class"][:max_classes]
    names = [str(entry["class"]) for entry in per_class]
    width = max([5] + [len(n) for n in names])
    lines.append("")
    lines.append(f"{'class':<{width}}  precision  recall     f1  support")
    for name, entry in zip(names, per_class):
        lines.append(
            f"{name:<{width}}  {entry['precision']:9.4f}  {entry['recall']:6.4f}  {entry['f1']:5.4f}"
            f"  {entry['support']:7d}"
        )
    if len(metrics["per_class"]) > max_classes:
        lines.append(f"... {len(metrics['per_class']) - max_classes} more classes in the JSON file")

    counts = metrics["confusion_matrix"]["counts"]
    if len(counts) <= max_classes:
        lines.append("")
        lines.append("confusion matrix (rows = true, columns = predicted)")
        cell = max([len(n) for n in names] + [len(str(v)) for row in counts for v in row])
        lines.append(" " * width + "  " + " ".join(f"{n:>{cell}}" for n in names))
        for name, row in zip(names, counts):
            lines.append(f"{name:<{width}}  " + " ".join(f"{v:>{cell}d}" for v in row))
    return "\n".join(lines)
