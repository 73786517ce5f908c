"""L2 at MLlib's defaults through the Estimator on one-hot / badly scaled data: ours vs MLlib.

    PYTHONPATH=. .venv/bin/python bench/onehot_l2.py [--sets wine,cancer,digits]

No UCI set is available offline here, so the categorical sets are built from scikit-learn's
bundled data: every numeric column is cut into quantile bins whose labels are strings ("c3_b5"),
and a few raw columns are kept unscaled (badly scaled mix). Each goes through
StringIndexer(handleInvalid="keep") → OneHotEncoder → VectorAssembler (with the raw columns),
a 70/30 split, regParam 0.01, standardization on and off. For each: our ``SoftmaxRegression`` and
MLlib's ``LogisticRegression`` at maxIter 100, tol 1e-6 (MLlib's defaults), and an exact optimum
(ours at tol 1e-14, maxIter 1000, certified by the gradient of MLlib's objective recomputed in
numpy); printed: max |p − p*| on the test rows for ours and MLlib, the solver ours chose, wall
seconds of each fit, the reference's gradient norm. One JSON line per case.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def categorical_frame(spark, name, seed=0):
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    X, y = {"wine": load_wine, "cancer": load_breast_cancer, "digits": load_digits}[name](return_X_y=True)
    rng = np.random.default_rng(seed)
    bins = {"wine": 6, "cancer": 8, "digits": 0}[name]
    cat_cols, rows = [], []
    cats = []
    for j in range(X.shape[1]):
        col = X[:, j]
        if bins:
            edges = np.unique(np.quantile(col, np.linspace(0, 1, bins + 1)[1:-1]))
            cats.append([f"c{j}_b{k}" for k in np.searchsorted(edges, col)])
        else:  # digits: a pixel's intensity (0..16) is its category
            cats.append([f"c{j}_v{int(v)}" for v in col])
        cat_cols.append(f"c{j}")
    raw_idx = [0, X.shape[1] // 2]  # two raw, unscaled columns next to the one-hot ones
    raw = X[:, raw_idx] * np.array([1000.0, 0.01])
    split = rng.random(len(y)) < 0.7
    data = [tuple(c[i] for c in cats) + tuple(float(v) for v in raw[i]) + (float(y[i]), bool(split[i]))
            for i in range(len(y))]
    df = spark.createDataFrame(data, cat_cols + ["r0", "r1", "label", "train"])
    return df, cat_cols


def assemble(df, cat_cols):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler

    idx = [f"{c}_i" for c in cat_cols]
    oh = [f"{c}_o" for c in cat_cols]
    pipe = Pipeline(stages=[StringIndexer(inputCols=cat_cols, outputCols=idx, handleInvalid="keep"),
                            OneHotEncoder(inputCols=idx, outputCols=oh),
                            VectorAssembler(inputCols=oh + ["r0", "r1"], outputCol="features")])
    out = pipe.fit(df).transform(df).select("features", "label", "train")
    return out.where("train").cache(), out.where("not train").cache()


def arrays(df):
    from pyspark.ml.functions import vector_to_array

    rows = df.select(vector_to_array("features"), "label").collect()
    return np.array([r[0] for r in rows]), np.array([int(r[1]) for r in rows])


def proba(model, df):
    from pyspark.ml.functions import vector_to_array

    return np.array([r[0] for r in model.transform(df).select(vector_to_array("probability")).collect()])


def grad_norm(X, y, W, b, reg, std):
    """max |∇| of MLlib's objective (mean log-loss + reg/2 Σ σ_j² w²) at (W, b)."""
    sig = X.std(0, ddof=1) if std else np.ones(X.shape[1])
    Z = X @ W.T + b
    Z -= Z.max(1, keepdims=True)
    P = np.exp(Z)
    P /= P.sum(1, keepdims=True)
    R = P - np.eye(W.shape[0])[y]
    G = R.T @ X / len(y) + reg * W * sig**2
    return float(max(np.abs(G).max(), np.abs(R.mean(0)).max()))


def main(argv=None):
    from pyspark.ml.classification import LogisticRegression
    from pyspark.sql import SparkSession

    from softmax_spark.ml import SoftmaxRegression

    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="wine,cancer,digits")
    args = ap.parse_args(argv)
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    for name in args.sets.split(","):
        df, cat_cols = categorical_frame(spark, name)
        train, test = assemble(df, cat_cols)
        X, y = arrays(train)
        for std in (True, False):
            kw = dict(regParam=0.01, standardization=std, family="multinomial")
            ref = SoftmaxRegression(maxIter=1000, tol=1e-14, **kw).fit(train)
            t = time.perf_counter()
            ours = SoftmaxRegression(maxIter=100, tol=1e-6, **kw).fit(train)
            t_ours = time.perf_counter() - t
            t = time.perf_counter()
            peer = LogisticRegression(maxIter=100, tol=1e-6, **kw).fit(train)
            t_peer = time.perf_counter() - t
            p_ref = proba(ref, test)
            meta = ours.softmaxModel.metadata
            print(json.dumps({
                "set": name, "standardization": std, "train_rows": len(y), "features": X.shape[1],
                "classes": int(y.max()) + 1, "ours_solver": meta.get("solver"), "ours_reason": meta.get("solver_reason"),
                "ours_dp": float(np.abs(proba(ours, test) - p_ref).max()),
                "mllib_dp": float(np.abs(proba(peer, test) - p_ref).max()),
                "ours_s": round(t_ours, 2), "mllib_s": round(t_peer, 2), "mllib_iters": peer.summary.totalIterations,
                "ref_grad": grad_norm(X, y, ref.coefficientMatrix.toArray(), ref.interceptVector.toArray(), 0.01, std),
                "ours_grad": grad_norm(X, y, ours.coefficientMatrix.toArray(), ours.interceptVector.toArray(), 0.01, std),
            }), flush=True)
        train.unpersist()
        test.unpersist()
    spark.stop()


if __name__ == "__main__":
    main()
