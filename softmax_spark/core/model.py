"""The softmax (multinomial logistic) model, pure numpy.

    p(y = c | x) = softmax(W x + b)_c = exp(w_c·x + b_c) / Σ_k exp(w_k·x + b_k)

computed with log-sum-exp, so logits of ±1e4 give finite probabilities.

Properties the API exposes (the seed derivation, corrected):

- the log-odds between classes i and j is linear:
  log p(i|x)/p(j|x) = (w_i − w_j)·x + (b_i − b_j)                       → ``log_odds(i, j)``
- for C = 2, p(classes[1] | x) = σ(v·x + c) with v = w_1 − w_0, c = b_1 − b_0 → ``to_logistic()``
  (numbering classes from 0, as everywhere in code)
- adding one vector u to every row of W (and one constant to b) changes no probability, so C−1
  free rows suffice: ``reference(k)`` pins row k to zero; ``centered()`` gives Σ_c w_c = 0 and
  Σ_c b_c = 0, which is where an L2-regularised optimum lies.

This module is the numpy core's model and nothing above it: writing and reading model directories
is ``softmax_spark.io.model_io`` (``save_model(model, path)``, ``load_model(path)``, also
``softmax_spark.save_model`` / ``softmax_spark.load_model``), coefficient inference on a Spark
DataFrame is ``softmax_spark.fit.coefficients.coefficient_table(model, df)``
(``softmax_spark.coefficient_table(model, df)``).

Conventions
-----------
- ``coef``: ndarray of shape (n_classes, n_features), row c = w_c.
- ``intercept``: ndarray of shape (n_classes,); zeros when fitted without an intercept.
- ``classes``: list of the label values in sorted order (scikit-learn's ``classes_`` rule);
  position c in ``classes`` is row c of ``coef``.
- ``X``: array-like of shape (n_samples, n_features), or a scipy.sparse matrix (kept sparse).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from softmax_spark.core.labels import check_known, plain as _plain, sorted_classes
from softmax_spark.core.loss import is_sparse, log_softmax, softmax

__all__ = ["SoftmaxModel", "LogisticModel", "sorted_classes", "labels_to_index"]


def labels_to_index(labels: Sequence[Any], classes: Sequence[Any]) -> np.ndarray:
    """Map label values to positions in ``classes`` (``labels.label_positions``' rule: 1 == 1.0,
    "1" != 1, True is not 1); a null or unknown label is an ``InputError`` (a ValueError) naming it
    and its row.

    Returns ndarray of shape (n_samples,) of int64.
    """
    return check_known(labels, classes, None, where=None, owner="the model's")


@dataclass(frozen=True)
class LogisticModel:
    """Binary logistic model p(classes[1] | x) = σ(coef·x + intercept)."""

    coef: np.ndarray  # of shape (n_features,)
    intercept: float
    classes: list

    def predict_proba(self, X) -> np.ndarray:
        """ndarray of shape (n_samples, 2): [1 − σ(z), σ(z)] with z = coef·x + intercept."""
        z = np.asarray(X, dtype=np.float64) @ self.coef + self.intercept
        p1 = 0.5 * (1.0 + np.tanh(0.5 * z))  # σ(z) without overflow for any finite z
        return np.column_stack([1.0 - p1, p1])


@dataclass
class SoftmaxModel:
    """A fitted (or given) softmax model. See the module docstring for the maths and conventions.

    Attributes
    ----------
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    classes : list of label values, sorted
    history : list of dicts, one per training iteration (empty for a hand-built model)
    metadata : dict of training options and data summary (JSON-serialisable)
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: list
    history: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.coef = np.array(self.coef, dtype=np.float64, copy=True)
        if self.coef.ndim != 2:
            raise ValueError(f"coef must be 2-d (n_classes, n_features), got shape {self.coef.shape}")
        n_classes = self.coef.shape[0]
        if self.intercept is None:
            self.intercept = np.zeros(n_classes)
        self.intercept = np.array(self.intercept, dtype=np.float64, copy=True).reshape(-1)
        if self.intercept.shape != (n_classes,):
            raise ValueError(
                f"intercept must have shape ({n_classes},), got {self.intercept.shape}"
            )
        self.classes = [_plain(c) for c in self.classes]
        if len(self.classes) != n_classes:
            raise ValueError(f"{len(self.classes)} classes for {n_classes} rows of coef")
        if len(set(self.classes)) != n_classes:
            raise ValueError(f"classes must be distinct, got {self.classes}")
        if n_classes < 2:
            raise ValueError("a softmax model needs at least 2 classes")

    @property
    def n_classes(self) -> int:
        return self.coef.shape[0]

    @property
    def n_features(self) -> int:
        return self.coef.shape[1]

    # -- prediction -------------------------------------------------------------------------
    def _check_X(self, X):
        if is_sparse(X):  # scipy.sparse: kept sparse, X @ Wᵀ is a sparse × dense product
            if X.ndim != 2 or X.shape[1] != self.n_features:
                raise ValueError(f"X has shape {X.shape}; the model expects (n_samples, {self.n_features})")
            return X.tocsr()
        X = np.asarray(X)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"X has shape {X.shape}; the model expects (n_samples, {self.n_features})"
            )
        return X

    def decision_function(self, X) -> np.ndarray:
        """Logits W x + b, ndarray of shape (n_samples, n_classes). ``X`` may be a scipy.sparse
        matrix (never densified)."""
        X = self._check_X(X)
        return np.asarray(X.astype(np.float64, copy=False) @ self.coef.T) + self.intercept

    def predict_log_proba(self, X) -> np.ndarray:
        """log p(y = c | x), ndarray of shape (n_samples, n_classes)."""
        return log_softmax(self.decision_function(X))

    def predict_proba(self, X) -> np.ndarray:
        """p(y = c | x), ndarray of shape (n_samples, n_classes); columns in ``classes`` order."""
        return softmax(self.decision_function(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class label for each row, ndarray of shape (n_samples,)."""
        return np.asarray(self.classes)[self.decision_function(X).argmax(axis=1)]

    def class_index(self, labels) -> np.ndarray:
        """Positions of ``labels`` in ``classes`` (ndarray of int64); unknown labels raise."""
        return labels_to_index(labels, self.classes)

    # -- the seed's properties ----------------------------------------------------------------
    def log_odds(self, i: int, j: int) -> tuple[np.ndarray, float]:
        """(w_i − w_j, b_i − b_j): log p(y=classes[i]|x) / p(y=classes[j]|x) = (w_i − w_j)·x + b_i − b_j."""
        return self.coef[i] - self.coef[j], float(self.intercept[i] - self.intercept[j])

    def to_logistic(self) -> LogisticModel:
        """For C = 2: p(classes[1] | x) = σ(v·x + c), v = w_1 − w_0, c = b_1 − b_0."""
        if self.n_classes != 2:
            raise ValueError(f"to_logistic needs 2 classes, the model has {self.n_classes}")
        v, c = self.log_odds(1, 0)
        return LogisticModel(v, c, list(self.classes))

    def centered(self) -> "SoftmaxModel":
        """The same probabilities with Σ_c w_c = 0 and Σ_c b_c = 0 (subtract the mean row)."""
        return self._with(self.coef - self.coef.mean(axis=0), self.intercept - self.intercept.mean())

    def reference(self, k: int = -1) -> "SoftmaxModel":
        """The same probabilities with row k of W (and b_k) pinned to zero: C−1 free rows."""
        return self._with(self.coef - self.coef[k], self.intercept - self.intercept[k])

    @property
    def optimality_gap_bound(self) -> float | None:
        """The certificate's upper bound on J − J* (``metadata["certificate"]``), or None."""
        cert = self.metadata.get("certificate") or {}
        return cert.get("bound")

    def _with(self, coef, intercept) -> "SoftmaxModel":
        return SoftmaxModel(coef, intercept, list(self.classes), list(self.history), dict(self.metadata))

    # -- interop ------------------------------------------------------------------------------
    def to_sklearn(self):
        """A fitted ``sklearn.linear_model.LogisticRegression`` with the same probabilities.

        scikit-learn keeps a single row for binary problems: coef_ = w_1 − w_0.
        """
        from sklearn.linear_model import LogisticRegression

        est = LogisticRegression()
        if self.n_classes == 2:
            v, c = self.log_odds(1, 0)
            est.coef_ = v.reshape(1, -1).copy()
            est.intercept_ = np.array([c])
        else:
            est.coef_ = self.coef.copy()
            est.intercept_ = self.intercept.copy()
        est.classes_ = np.asarray(self.classes)
        est.n_features_in_ = self.n_features
        est.n_iter_ = np.array([len(self.history)])
        return est
