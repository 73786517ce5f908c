"""Small synthetic datasets and DataFrame builders shared by the Spark tests."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def make_data(n=400, d=5, c=3, seed=0, scale=1.0):
    """Rows drawn from a softmax model: (X of shape (n, d), y of shape (n,) ints in [0, c))."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(c, d)) * scale
    X = rng.normal(size=(n, d))
    logits = X @ W.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return X, y


def to_table(X, y, weight=None, labels=None, extra=None) -> pa.Table:
    cols = {
        "id": np.arange(len(y)),
        "features": pa.array(list(np.asarray(X, dtype=np.float64)), type=pa.list_(pa.float64())),
        "label": pa.array(list(labels[y]) if labels is not None else y),
    }
    if weight is not None:
        cols["weight"] = np.asarray(weight, dtype=np.float64)
    for k, v in (extra or {}).items():
        cols[k] = v
    return pa.table(cols)


def to_df(spark, X, y, weight=None, labels=None, partitions=2):
    df = spark.createDataFrame(to_table(X, y, weight, labels).to_pandas())
    return df.repartition(partitions) if partitions else df


def write_parquet(path, X, y, weight=None, labels=None, row_group_size=None):
    import pyarrow.parquet as pq

    pq.write_table(to_table(X, y, weight, labels), path, row_group_size=row_group_size)
    return path


def sklearn_reference(X, y, l2, sample_weight=None, fit_intercept=True):
    """scikit-learn's optimum of the same objective J = Σ s_i·(−log p_i)/Σ s_i + λ‖W‖²_F.

    scikit-learn minimises ½‖W‖²_F/C + Σ s_i·(−log p_i), so C = 1/(2λ Σ s_i) for ≥ 3 classes.
    For 2 classes it keeps one row v (p(1|x) = σ(v·x + c)) with penalty ½‖v‖²/C; our L2 optimum
    has w_0 = −w_1 = v/2, so λ(‖w_0‖² + ‖w_1‖²) = ½λ‖v‖²: the matching C is 1/(λ Σ s_i).
    """
    from sklearn.linear_model import LogisticRegression

    total = len(y) if sample_weight is None else float(np.sum(sample_weight))
    C = sklearn_C(l2, total, len(np.unique(y)))
    est = LogisticRegression(C=C, tol=1e-12, max_iter=100000, fit_intercept=fit_intercept)
    return est.fit(X, y, sample_weight=sample_weight)


def sklearn_C(l2: float, weight_sum: float, n_classes: int) -> float:
    """scikit-learn's C for our λ (``sklearn_reference``): 1/(λ Σ s_i) for 2 classes, else 1/(2λ Σ s_i)."""
    return 1.0 / (l2 * weight_sum) if n_classes == 2 else 1.0 / (2.0 * l2 * weight_sum)
