"""The second-order finish above the Newton bound, in numpy (no Spark): a bag-of-words set
(tests/bow_data.py: 9,751 rows × 8,700 Zipf word counts × 6 classes, CSR; P = 52,206), held-out
rows from the same generator; per case the quasi-Newton default (lbfgs / owlqn, what ``auto``
ran before) and ``qn-newton-cg`` (``auto``'s choice now) against a reference solved by
qn-newton-cg to KKT ≤ 1e-13 (certified by the KKT residual printed).

    PYTHONPATH=.:tests .venv/bin/python bench/bow_finish.py
"""

import json
import sys
import time

import numpy as np

sys.path.insert(0, "tests")
from bow_data import SparseNumpyProblem, make_bow, sparse_moments  # noqa: E402

from softmax_spark.fit.loop import TrainingLoop  # noqa: E402
from softmax_spark.core.penalty import L1Penalty, L2Penalty, feature_weights, l1_feature_weights  # noqa: E402
from softmax_spark.core.precondition import Preconditioner  # noqa: E402
from softmax_spark.solvers import LBFGS, OWLQN, OrthantNewtonCG  # noqa: E402


def proba(X, W, b):
    Z = X @ W.T + b
    Z -= Z.max(1, keepdims=True)
    P = np.exp(Z)
    return P / P.sum(1, keepdims=True)


def main():
    n, D, C = 9751, 8700, 6
    X, y = make_bow(n, D, C, seed=0)
    Xte, _ = make_bow(3000, D, C, seed=1)
    mean, var = sparse_moments(X)
    sig = np.sqrt(var * n / (n - 1))
    cases = [("L2 λ=1e-3", 1e-3, 0.0, None), ("elastic net regParam 1e-3 α=0.5", 2.5e-4, 5e-4, None),
             ("L2 λ=1e-3, W ≥ 0", 1e-3, 0.0, 0.0)]
    for label, l2, l1, lower in cases:
        for std in (False, True):
            pen = L2Penalty(l2, feature_weights(D, std, sig), standardize=std)
            pre = Preconditioner(C, D, mean, var, pen, True)
            prob = SparseNumpyProblem(X, y, pre, pen)
            smooth = not l1 and lower is None
            if not smooth:
                prob.nonsmooth = L1Penalty(l1, l1_feature_weights(D, std, sig), lower=lower).in_theta(pre)

            def run(solver, max_iter=2000):
                prob.passes = 0
                t = time.perf_counter()
                r = TrainingLoop(solver, prob, max_iter).run(np.zeros(pre.size))
                W, b = pre.to_model(r.theta)
                if prob.nonsmooth is not None:
                    W, b = prob.nonsmooth.snap(r.theta, W, b)
                kkt = next((h["kkt_residual"] for h in reversed(r.history) if "kkt_residual" in h), None)
                return W, b, prob.passes, time.perf_counter() - t, kkt, r.reason

            Wr, br, _, _, kr, _ = run(OrthantNewtonCG(kkt_tol=1e-13, step_tol=1e-11), 300)
            P = proba(Xte, Wr, br)
            out = {"case": label, "standardize": std, "reference_kkt": kr}
            for name, solver in (("lbfgs" if smooth else "owlqn", LBFGS() if smooth else OWLQN()),
                                 ("qn-newton-cg", OrthantNewtonCG())):
                W, b, passes, secs, kkt, reason = run(solver)
                out[name] = {"passes": passes, "seconds": round(secs, 1), "kkt": kkt,
                             "max_dp_test": float(np.abs(proba(Xte, W, b) - P).max()),
                             "same_support": bool(np.array_equal(W != 0, Wr != 0)), "reason": reason[:60]}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
