"""K-fold cross-validation along a warm-started regularisation path, every fold in every pass.

One ingest; each row carries its fold id (encoded in its label position, ``y = fold·C + class``,
so the executor-local blocks need no new column) and **every distributed pass computes the sums
of all K folds at once**: ``SlotsKernel`` runs, on each chunk of rows, the ordinary block kernels
(``kernels.LossGradKernel``, ``curvature.HessianKernel`` / ``HvpKernel`` / ``HessianDiagKernel``)
once per *slot*, a slot being one fold model on its training rows (fold ≠ k), one fold model on
its validation rows (fold = k: the metric), or one model on all rows (the final refit). Fold
moments are summed per fold and the training moments of fold k taken as total − fold k. A pass
thus reads the data once and runs one Spark job (or one round of ``resident`` tasks) whatever K;
its flops are those of the K fits' passes (each fold model meets (K−1)/K of the rows).

The K fold models advance together along the path (strongest penalty first, each fold
warm-started from its own model at the previous λ): each fold runs the *same* solver and
``loop.TrainingLoop`` a separate fit runs, in its own driver thread, over a ``FoldProblem``
whose data passes are requests to a ``LockstepPasses`` coordinator; the coordinator waits until
every live fold has asked for its next pass, runs them as one pass and hands each fold its sums.
A fold that has converged leaves the lockstep; the others go on. So each fold model is the
model a separate fit of the same solver reaches (to its stopping rule), computed in the passes
of the slowest fold.

Memory and pass cost: a pass carries one accumulator per slot — K loss/gradient accumulators
(K·P doubles, P = C·(D + 1)) for gradient passes; with Newton (``solvers.newton``) K Hessians
(K·P² doubles). Newton is used per fold only where the single-fit rule (``solvers.auto``) would
pick it **and** K·P² ≤ ``FOLD_HESSIAN_MAX_DOUBLES`` (2²⁴ doubles = 128 MiB, the size of one
Hessian at ``solvers.auto.NEWTON_MAX_PARAMS``); otherwise L-BFGS (gradient passes only).

The validation metric of a fold model (log-loss, accuracy, weighted F1) is computed on its
fold's rows exactly as ``pyspark.ml.evaluation.MulticlassClassificationEvaluator`` computes it
(``MetricKernel``): log-loss clips p(y|x) to [eps, 1 − eps] (eps = 1e-15, MLlib's
``MulticlassMetrics.logLoss``) and takes the weighted mean; accuracy and weighted F1 come from the
weighted confusion matrix. It rides along with the first pass of the next λ (which starts from
the same models), so it costs no pass of its own except after the last λ.

Pure numpy (no Spark import): the Spark side is ``ml_cv``.
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple

import numpy as np

from softmax_spark.core.kernels import LossGradKernel
from softmax_spark.core.loss import softmax
from softmax_spark.core.penalty import L2Penalty, feature_weights
from softmax_spark.core.precondition import Preconditioner
from softmax_spark.core.problem import ProblemBase
from softmax_spark.core.penalty import L1Penalty, l1_feature_weights

__all__ = ["SlotsKernel", "MomentsKernel", "MetricKernel", "FoldProblem", "LockstepPasses", "FoldMoments",
           "metric_value", "regparam_max", "regparam_grid", "one_standard_error_index", "FOLD_HESSIAN_MAX_DOUBLES",
           "LOGLOSS_EPS", "METRICS"]

FOLD_HESSIAN_MAX_DOUBLES = 1 << 24  # K·P² bound for K per-fold Hessians in one pass (128 MiB)
LOGLOSS_EPS = 1e-15  # MulticlassClassificationEvaluator's default eps (MulticlassMetrics.logLoss)
METRICS = {"logLoss": False, "accuracy": True, "f1": True}  # name → larger is better (MLlib's evaluator)
ENET_FLOOR = 1e-3  # glmnet's α floor for the start of an α = 0 path (λ_max = max|g| / max(α, 1e-3))


# -- kernels ------------------------------------------------------------------------------------
class SlotsAccumulator:
    """One accumulator per slot; merges slot by slot."""

    __slots__ = ("accs",)

    def __init__(self, accs):
        self.accs = list(accs)

    def merge(self, other: "SlotsAccumulator") -> "SlotsAccumulator":
        self.accs = [a.merge(b) for a, b in zip(self.accs, other.accs)]
        return self

    @property
    def count(self) -> int:
        return 0


class SlotsKernel:
    """Several block kernels over the rows of each chunk, each on its slot's rows.

    ``slots``: a list of (kernel, mode, fold) with mode "train" (rows with fold ≠ ``fold``),
    "valid" (fold = ``fold``), "all" (every row) or "raw" (every row, the encoded label
    positions fold·C + class given as they are). Payload: the list of the slots' payloads.
    The other modes give the kernel class positions y mod C (``n_classes`` = C).
    """

    def __init__(self, n_classes: int, slots):
        self.n_classes = int(n_classes)
        self.slots = list(slots)

    def zero(self, n_classes: int, n_features: int) -> SlotsAccumulator:
        return SlotsAccumulator([k.zero(self.n_classes, n_features) for k, _, _ in self.slots])

    def add(self, acc: SlotsAccumulator, payload, X, y_index, sample_weight=None) -> SlotsAccumulator:
        codes = np.asarray(y_index, dtype=np.intp)
        fold, y = np.divmod(codes, self.n_classes)
        rows_of = {}
        for i, (kernel, mode, k) in enumerate(self.slots):
            if mode in ("all", "raw"):
                acc.accs[i] = kernel.add(acc.accs[i], payload[i], X, codes if mode == "raw" else y, sample_weight)
                continue
            key = (mode, k)
            if key not in rows_of:
                rows_of[key] = np.flatnonzero(fold != k if mode == "train" else fold == k)
            rows = rows_of[key]
            if len(rows) == 0:
                continue
            w = None if sample_weight is None else sample_weight[rows]
            acc.accs[i] = kernel.add(acc.accs[i], payload[i], X[rows], y[rows], w)
        return acc


def _xt(X, M):
    """Xᵀ M for a dense or CSR chunk (float64), shape (D, m)."""
    if isinstance(X, np.ndarray):
        return X.T.astype(np.float64, copy=False) @ M if X.dtype != np.float64 else X.T @ M
    return np.asarray(X.T @ M)


class MomentsAccumulator:
    """Per fold and class: Σ w and Σ w (x − m); per fold: Σ w (x − m)² and the row count."""
    __slots__ = ("wsum", "xsum", "x2sum", "rows")

    def __init__(self, n_folds, n_classes, n_features):
        self.wsum = np.zeros((n_folds, n_classes))
        self.xsum = np.zeros((n_folds, n_classes, n_features))
        self.x2sum = np.zeros((n_folds, n_features))
        self.rows = np.zeros(n_folds)

    def merge(self, other):
        self.wsum += other.wsum
        self.xsum += other.xsum
        self.x2sum += other.x2sum
        self.rows += other.rows
        return self


class MomentsKernel:
    """Fold × class moments around a shift ``m`` (payload: m of shape (D,), the ingest's mean,
    so badly centred columns keep their variance); slot mode "raw" (labels fold·C + class)."""

    def __init__(self, n_folds: int, n_classes: int):
        self.n_folds, self.n_classes = int(n_folds), int(n_classes)

    def zero(self, n_classes, n_features):
        return MomentsAccumulator(self.n_folds, self.n_classes, n_features)

    def add(self, acc, payload, X, codes, sample_weight=None):
        K, C = self.n_folds, self.n_classes
        n = X.shape[0]
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        onehot = np.zeros((n, K * C))
        onehot[np.arange(n), codes] = w
        shift = np.asarray(payload, dtype=np.float64)
        if isinstance(X, np.ndarray):
            Xc = X.astype(np.float64) - shift
            acc.xsum += (Xc.T @ onehot).T.reshape(K, C, -1)
            fold_w = onehot.reshape(n, K, C).sum(axis=2)  # (n, K)
            acc.x2sum += ((Xc * Xc).T @ fold_w).T
        else:  # Σ w (x − m) = Σ w x − m Σ w; Σ w (x − m)² = Σ w x² − 2 m Σ w x + m² Σ w
            X = X.astype(np.float64)
            wx = _xt(X, onehot).T.reshape(K, C, -1)
            wsum_kc = onehot.sum(axis=0).reshape(K, C)
            acc.xsum += wx - wsum_kc[:, :, None] * shift
            fold_w = onehot.reshape(n, K, C).sum(axis=2)
            wx2 = _xt(X.multiply(X), fold_w).T
            wxk, wk = wx.sum(axis=1), wsum_kc.sum(axis=1)
            acc.x2sum += wx2 - 2 * shift * wxk + (shift**2) * wk[:, None]
        acc.wsum += onehot.sum(axis=0).reshape(K, C)
        acc.rows += np.bincount(codes // C, minlength=K)[:K]
        return acc


class MetricAccumulator:
    """Σ w·(−log clip(p_y)), Σ w, and the weighted confusion matrix (true × predicted)."""

    __slots__ = ("loss_sum", "weight_sum", "confusion")

    def __init__(self, n_classes):
        self.loss_sum = 0.0
        self.weight_sum = 0.0
        self.confusion = np.zeros((n_classes, n_classes))

    def merge(self, other):
        self.loss_sum += other.loss_sum
        self.weight_sum += other.weight_sum
        self.confusion += other.confusion
        return self


class MetricKernel:
    """The validation metric's sums for one model on its slot's rows. Payload (coef, intercept).

    p = softmax(x Wᵀ + b) (the model's ``probability``), prediction = argmax p (the first of
    ties, as ``Vector.argmax``); log-loss as MLlib's ``MulticlassMetrics.logLoss(eps)``:
    −log(min(max(p_y, eps), 1 − eps)) weighted by the row's weight.
    """

    def __init__(self, fit_intercept: bool = True, eps: float = LOGLOSS_EPS):
        self.fit_intercept = bool(fit_intercept)
        self.eps = float(eps)

    def zero(self, n_classes, n_features):
        return MetricAccumulator(n_classes)

    def add(self, acc, payload, X, y, sample_weight=None):
        coef, intercept = payload
        if X.dtype != np.float64:
            X = X.astype(np.float64)
        logits = np.asarray(X @ coef.T)
        if self.fit_intercept:
            logits = logits + intercept
        p = softmax(logits)
        n = X.shape[0]
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        py = np.minimum(np.maximum(p[np.arange(n), y], self.eps), 1.0 - self.eps)
        acc.loss_sum += float(-np.log(py) @ w)
        acc.weight_sum += float(w.sum())
        np.add.at(acc.confusion, (y, p.argmax(axis=1)), w)
        return acc


def metric_value(acc: MetricAccumulator, metric: str) -> float:
    """The metric from a ``MetricAccumulator``, as MulticlassClassificationEvaluator computes it:
    logLoss = Σ w·loss / Σ w; accuracy = Σ_c M_cc / Σ w; f1 = weightedFMeasure = Σ_c (label weight
    of c / Σ w)·F1_c with F1_c = 0 when precision + recall = 0 (MulticlassMetrics)."""
    if acc.weight_sum <= 0:
        raise ValueError("a validation fold has no rows (or only zero-weight rows)")
    if metric == "logLoss":
        return acc.loss_sum / acc.weight_sum
    M = acc.confusion
    total = M.sum()
    if metric == "accuracy":
        return float(np.trace(M) / total)
    if metric == "f1":
        tp = np.diag(M)
        label_w, pred_w = M.sum(axis=1), M.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(pred_w > 0, tp / np.where(pred_w > 0, pred_w, 1), 0.0)
            recall = np.where(label_w > 0, tp / np.where(label_w > 0, label_w, 1), 0.0)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / np.where(precision + recall > 0,
                                                                                   precision + recall, 1), 0.0)
        return float((label_w / total) @ f1)
    raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")


# -- fold moments → problems --------------------------------------------------------------------
class FoldMoments(NamedTuple):
    """Weighted moments of a row set: rows, Σ w, Σ w per class (C,), mean (D,), population
    variance (D,)."""
    rows: int
    weight_sum: float
    class_weight_sums: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    class_means: np.ndarray  # (C, D)

    @classmethod
    def of(cls, acc: MomentsAccumulator, shift, fold: int | None, exclude: bool):
        """Moments of fold ``fold``'s rows (``exclude`` False), of every other row (True), or of
        all rows (``fold`` None), from the fold sums (training = total − fold)."""
        pick = np.ones(len(acc.rows), bool) if fold is None else (np.arange(len(acc.rows)) != fold) == exclude
        wc = acc.wsum[pick].sum(axis=0)
        xc = acc.xsum[pick].sum(axis=0)
        S = float(wc.sum())
        if S <= 0:
            raise ValueError("no rows (or only zero-weight rows) in a fold's training set")
        dmean = xc.sum(axis=0) / S  # mean − shift
        var = np.maximum(acc.x2sum[pick].sum(axis=0) / S - dmean**2, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            class_means = np.where(wc[:, None] > 0, xc / np.where(wc > 0, wc, 1)[:, None], 0.0) + shift
        return cls(int(acc.rows[pick].sum()), S, wc, dmean + shift, var, class_means)

    def col_std(self) -> np.ndarray:
        """MLlib's unbiased column std, as ``training.build_problem``: √(var · n/(n − 1))."""
        n = max(self.rows, 2)
        return np.sqrt(self.var * n / (n - 1))


def build_fold_problem(passes, slot, moments: FoldMoments, n_classes, lam, standardize, fit_intercept,
                       reference=False, precondition=True, seed=0, l1=0.0):
    """The ``FoldProblem`` of one slot, with the penalty and preconditioner ``training.build_problem``
    gives a separate fit on the same rows; ``l1`` > 0 adds the L1 part λ₁ Σ ω_j |w_cj| as the
    problem's ``nonsmooth`` term (``penalty.L1Penalty``, ω_j = σ_j under standardization).
    The problem's ``n_rows`` is the slot's row count (prox-newton plans its Hessian by it)."""
    D = moments.mean.shape[0]
    penalty = L2Penalty(lam, feature_weights(D, standardize, moments.col_std()), centred=reference,
                        standardize=standardize)
    second = moments.var if fit_intercept else moments.var + moments.mean**2
    precond = Preconditioner(n_classes, D, moments.mean, second, penalty, fit_intercept, reference,
                             enabled=precondition)
    problem = FoldProblem(passes, slot, precond, penalty, seed)
    problem.n_rows = int(moments.rows)  # for the solvers that plan their passes by it (prox-newton)
    if l1 > 0:
        problem.nonsmooth = L1Penalty(l1, l1_feature_weights(D, standardize, moments.col_std())).in_theta(precond)
    return problem


class FoldProblem(ProblemBase):
    """J of one slot (a fold's training rows, or all rows): its passes are requests to a
    ``LockstepPasses``, run together with the other folds' (see the module docstring).
    ``slot`` = (mode, fold), as ``SlotsKernel``'s."""
    def __init__(self, passes: "LockstepPasses", slot, precond, penalty, seed: int = 0):
        super().__init__(precond, penalty, seed)
        self.lockstep = passes
        self.slot = tuple(slot)

    def _data_term(self, coef, intercept, iteration, batch_fraction):
        if batch_fraction < 1.0:
            raise ValueError("cross-validation runs full-batch solvers only")
        intercept = np.zeros(coef.shape[0]) if intercept is None else intercept
        acc = self.lockstep.request(self.slot, LossGradKernel(self.fit_intercept), (coef, intercept))
        loss, grad_coef, grad_intercept = acc.result()
        return loss, grad_coef, grad_intercept, acc.count

    def _curvature_pass(self, kernel, payload, iteration: int = 0):
        acc = self.lockstep.request(self.slot, kernel, payload)
        self.passes += 1
        self.rows += getattr(acc, "count", 0)
        return acc.result()


# -- the lockstep -------------------------------------------------------------------------------
class _Failed:
    def __init__(self, exc):
        self.exc = exc


class LockstepPasses:
    """Runs several fits in driver threads and their data passes together, one pass per round.

    ``run_pass(slots, payloads)`` runs one distributed pass of ``SlotsKernel(slots)`` and returns
    its ``SlotsAccumulator`` (``ml_cv`` gives ``DistributedLoss.run``). ``rides`` are (kernel,
    slot, payload) pieces added to the next pass (the metric of the models just fitted), their
    accumulators returned by ``take_rides``. ``passes`` counts the rounds.
    """

    def __init__(self, run_pass):
        self.run_pass = run_pass
        self.cond = threading.Condition()
        self.pending: dict = {}
        self.results: dict = {}
        self.live: set = set()
        self.rides: list = []
        self.ride_results: list = []
        self.passes = 0

    def request(self, slot, kernel, payload):
        """Called from a fit's thread: one pass of ``kernel`` at ``payload`` on ``slot``'s rows;
        blocks until the round that runs it is done."""
        with self.cond:
            self.pending[slot] = (kernel, payload)
            self.cond.notify_all()
            self.cond.wait_for(lambda: slot in self.results)
            out = self.results.pop(slot)
        if isinstance(out, _Failed):
            raise out.exc
        return out

    def add_ride(self, kernel, slot, payload) -> None:
        self.rides.append((kernel, slot, payload))

    def take_rides(self) -> list:
        """The rides' accumulators (running a pass for them if none has yet)."""
        if self.rides:
            self._round({})
        out, self.ride_results = self.ride_results, []
        return out

    def _round(self, requests: dict) -> None:
        slots = [(kernel, mode, fold) for (mode, fold), (kernel, _) in requests.items()]
        payloads = [payload for _, payload in requests.values()]
        rides, self.rides = self.rides, []
        slots += [(kernel, mode, fold) for kernel, (mode, fold), _ in rides]
        payloads += [payload for *_, payload in rides]
        acc = self.run_pass(slots, payloads)
        self.passes += 1
        n = len(requests)
        for slot, result in zip(requests, acc.accs[:n]):
            self.results[slot] = result
        self.ride_results.extend(acc.accs[n:])

    def run(self, fits: dict) -> dict:
        """Run ``fits`` (slot → callable doing one fit, whose passes call ``request``) in threads,
        in lockstep; returns slot → the callable's result. The first exception is re-raised."""
        outcomes: dict = {}

        def body(slot, fn):
            try:
                outcomes[slot] = fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised on the driver's thread
                outcomes[slot] = _Failed(exc)
            finally:
                with self.cond:
                    self.live.discard(slot)
                    self.cond.notify_all()

        threads = []
        with self.cond:
            self.live = set(fits)
        for slot, fn in fits.items():
            t = threading.Thread(target=body, args=(slot, fn), name=f"softmax_spark cv {slot}", daemon=True)
            threads.append(t)
            t.start()
        with self.cond:
            while True:
                self.cond.wait_for(lambda: all(s in self.pending for s in self.live))
                if not self.live:
                    break
                requests = {s: self.pending.pop(s) for s in list(self.live)}
                try:
                    self._round(requests)
                except BaseException as exc:  # noqa: BLE001 - every waiting fit fails with it
                    for s in requests:
                        self.results[s] = _Failed(exc)
                self.cond.notify_all()
        for t in threads:
            t.join()
        for out in outcomes.values():
            if isinstance(out, _Failed):
                raise out.exc
        return outcomes


# -- the grid -----------------------------------------------------------------------------------
def regparam_max(moments: FoldMoments, standardize: bool, elastic_net: float = 0.0) -> float:
    """The start of the default path, in MLlib's regParam units.

    At W = 0 with the intercept at its optimum (b = log of the weighted class priors π), the
    gradient of the mean log-loss is ∇_W = π_c (x̄ − x̄_c) (x̄_c the class means). Under an L1
    part α, regParam·α ≥ max_cj |g_cj / p_j| (p_j = σ_j under standardization) is exactly where
    every coefficient stays zero (glmnet's λ_max); for α = 0 (L2) no finite λ gives W = 0, and
    we take glmnet's convention α → max(α, 1e-3): regParam_max = max|g/p| / max(α, 1e-3), where
    the penalty dwarfs the data term (W ≈ 0). Binomial (MLlib's single row v): ∂/∂v_j of the
    mean log-loss at v = 0 is g_1j, so the same bound holds.
    """
    pi = moments.class_weight_sums / moments.weight_sum
    g = pi[:, None] * (moments.mean[None, :] - moments.class_means)
    scale = moments.col_std() if standardize else np.ones_like(moments.mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(scale > 0, np.abs(g) / np.where(scale > 0, scale, 1.0), 0.0)
    top = float(scaled.max(initial=0.0))
    return top / max(float(elastic_net), ENET_FLOOR) if top > 0 else 1.0


def regparam_grid(start: float, num: int, ratio: float) -> list:
    """``num`` regParams from ``start`` down to ``start·ratio``, evenly spaced in log (glmnet's
    and scikit-learn's path)."""
    if num == 1:
        return [float(start)]
    return [float(v) for v in np.geomspace(start, start * ratio, num)]


def one_standard_error_index(means, stds_err, reg_params, larger_is_better: bool) -> int:
    """glmnet's ``lambda.1se``: the largest regParam whose mean metric is within one standard
    error of the best mean (standard error = std over folds (ddof 1) / √K, glmnet's ``cvsd``)."""
    means = np.asarray(means, dtype=np.float64)
    best = int(np.argmax(means) if larger_is_better else np.argmin(means))
    bound = means[best] - stds_err[best] if larger_is_better else means[best] + stds_err[best]
    ok = means >= bound if larger_is_better else means <= bound
    candidates = [i for i in range(len(means)) if ok[i]]
    return max(candidates, key=lambda i: (reg_params[i], -i))


def best_index(means, larger_is_better: bool) -> int:
    """The first best (as ``CrossValidator``: numpy argmax/argmin over the given order)."""
    means = np.asarray(means, dtype=np.float64)
    return int(np.argmax(means) if larger_is_better else np.argmin(means))


def fold_std(values) -> tuple[float, float]:
    """(std over folds as ``CrossValidatorModel.stdMetrics`` (numpy, ddof 0), standard error
    std(ddof 1)/√K)."""
    v = np.asarray(values, dtype=np.float64)
    se = float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(np.std(v)), se
