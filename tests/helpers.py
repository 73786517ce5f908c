"""Small synthetic datasets and DataFrame builders shared by the Spark tests."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


# the one definition of the softmax-model data is core_helpers.softmax_data
from core_helpers import softmax_data as make_data  # noqa: E402,F401


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


def load_job(name: str):
    """``jobs/<name>.py`` loaded as a module, so a test calls its ``main(argv, spark=…)`` in process."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jobs", name + ".py")
    spec = importlib.util.spec_from_file_location(f"softmax_spark_{name}_job", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
