"""``--optimizer auto``: pick newton or lbfgs from the problem's shape (newton-cg only when asked for).

The rule (``choose_solver``), with P = C·D̃ parameters (D̃ = D + 1 with an intercept):

1. **newton** when P ≤ ``NEWTON_MAX_PARAMS`` (4096) and one Hessian pass costs at most
   ``NEWTON_MAX_PASS_RATIO`` (6) times a gradient pass (estimated wall time, below). Newton needs
   10–15 passes on every data set we measured (badly scaled or not; scikit-learn's wine, iris,
   breast_cancer, digits: 11–14 passes to 1e-8 in probabilities), L-BFGS from ~30 passes on a
   well-conditioned problem (26 on the 1M × 64 × 10 benchmark) to over 1000 on badly scaled real data;
   a ratio ≤ 6 makes Newton no slower than an L-BFGS run of ~90 passes, and exact on the hard ones.
   P ≤ 4096 keeps the Hessian (P² float64 = 128 MiB at the bound) and the driver's Cholesky
   (P³/3 flops, ~2 s) small.
2. **qn-newton-cg** when P > 4096 (the Hessian no longer fits): L-BFGS, then a Newton-CG finish whose
   Hessian-vector products are distributed passes (``solvers/orthant_newton.py``) — L-BFGS alone at
   tol 1e-9 stopped 1e-5 (synthetic bag of words, tests/bow_data.py) to 2.3e-4 (a real one, issue 26)
   from the optimum's probabilities;
3. **lbfgs** otherwise: many rows with a modest P, where
   a Hessian pass costs tens of gradient passes (the 1M × 64 × 10 benchmark: ~60×, so Newton's ~12
   passes would take ~5 minutes against L-BFGS's 26 passes × 0.5 s). ``newton-cg`` is not picked
   automatically: each of its Hessian-vector products is a distributed pass, and it needed 121–923
   of them on the data sets of tests/test_newton.py (where Newton needed 11–14 passes), more passes
   than L-BFGS's usual count on wide, well-conditioned (e.g. hashed text) problems; choose it
   explicitly for wide, badly conditioned problems where L-BFGS stalls.

Estimated time of one distributed pass: ``PASS_OVERHEAD_S`` (Spark job, broadcast, treeAggregate:
0.1–0.2 s measured, README) plus flops / (rate × ``CORES``):

- gradient: 4·n·C·D̃·density flops (forward and backward products) at ``GRAD_FLOPS`` = 2.5 GF/s;
- Hessian: n·(P² + C·D̃²)·density flops (syrk of G, diagonal blocks) at ``HESSIAN_FLOPS`` = 7 GF/s, plus
  the driver's Cholesky P³/3 at ``CHOLESKY_FLOPS`` = 10 GF/s, plus moving the dense P × P sums: one
  8·P²-byte accumulator per task serialised, merged and mapped to θ on the driver
  (``HESSIAN_BYTES_PER_S`` = 300 MB/s, an assumed rate — not measured: the machine was at load 35 when
  this term was added). Without it the model took 0.73 s for a pass at 546 × 134 × 19 (P = 2,565, one-hot)
  where a run measured 1–2 s per iteration (issue 26), and chose newton there; with it, ≈ 1.1 s and lbfgs.

Rates measured in-process on this machine (one BLAS thread, float32 X up-cast per 32,768-row chunk,
``curvature`` kernels; best of 3 on a shared, loaded 2-core machine):

============== ===== ============= ============= =========== =============
rows × D × C    P     gradient pass Hessian pass  HVP pass    Hessian/grad
============== ===== ============= ============= =========== =============
2,000 × 20 × 5  105   0.6 ms        2.2 ms        0.4 ms      3.9
58k × 9 × 7     70    34 ms         150 ms        27 ms       4.4
100k × 64 × 10  650   87 ms         6,976 ms      176 ms      80
20k × 16 × 26   442   26 ms         536 ms        42 ms       21
20k × 200 × 10  2010  65 ms         7,812 ms      88 ms       121
============== ===== ============= ============= =========== =============

(Hessian ≈ 2–12 GF/s, gradient ≈ 0.5–3 GF/s.) The 1M × 64 × 10 benchmark is ten times the third
row: ~70 s per Hessian pass on one thread (~35 s on two), ~0.9 s per gradient pass in-process.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["choose_solver", "choose_nonsmooth_solver", "hessian_plan", "HessianPlan", "pass_seconds"]

NEWTON_MAX_PARAMS = 4096
NEWTON_MAX_PASS_RATIO = 6.0
PASS_OVERHEAD_S = 0.15
GRAD_FLOPS = 2.5e9
HESSIAN_FLOPS = 7e9
CHOLESKY_FLOPS = 10e9
CORES = 2
HESSIAN_BYTES_PER_S = 300e6


# prox-newton's sub-sampled Hessian (``hessian_plan``): the quadratic model's Hessian from every k-th row,
# at least HESSIAN_SAMPLE_PER_PARAM·P and HESSIAN_SAMPLE_MIN rows. Measured (numpy, 100k × 64 × 10,
# P = 650, elastic net α = 0.5, KKT ≤ 1e-10): 20k sampled rows 13 Hessian passes (3 with reuse), 10k 16
# iterations, 5k rows 19 Hessian passes with reuse failing; so ~32·P rows
HESSIAN_SAMPLE_PER_PARAM = 32
HESSIAN_SAMPLE_MIN = 20_000
# keep the last Hessian while a step cuts the KKT residual at least in half, when that is estimated faster
HESSIAN_REUSE_RATIO = 0.5
# passes per fit used to compare plans and solvers, as measured (numpy, above; tests/test_elastic_net.py):
# prox-newton with a new Hessian at every iterate 7–14 Hessian passes; with reuse 3 Hessian + 16–18 gradient
# passes; qn-newton-cg (OWL-QN, then orthant-wise Newton-CG) 300 gradient-pass equivalents (40–729 measured)
PROX_NEWTON_PASSES = 12
PROX_REUSE_PASSES = (3, 20)
QN_NEWTON_CG_PASSES = 300


def pass_seconds(n_rows: int, n_classes: int, n_features: int, fit_intercept: bool = True,
                 density: float = 1.0, cores: int = CORES, hessian_rows: int | None = None) -> tuple[float, float]:
    """Estimated wall time (s) of one gradient pass and of one Hessian pass (incl. the driver's
    Cholesky) under the module's cost model; ``hessian_rows``: the Hessian summed over that many
    of the rows only (a sub-sampled Hessian; loss and gradient over all)."""
    width = n_features + (1 if fit_intercept else 0)
    P = n_classes * width
    grad_flops = 4.0 * n_rows * P * density
    h_rows = n_rows if hessian_rows is None else min(n_rows, hessian_rows)
    hess_flops = h_rows * (P * P + n_classes * width * width) * density
    grad = PASS_OVERHEAD_S + grad_flops / (GRAD_FLOPS * cores)
    hess = PASS_OVERHEAD_S + hess_flops / (HESSIAN_FLOPS * cores) + P**3 / 3.0 / CHOLESKY_FLOPS
    if hessian_rows is not None:
        hess += grad_flops / (GRAD_FLOPS * cores)  # the pass's loss and gradient still cover every row
    hess += 8.0 * P * P * (cores + 1) / HESSIAN_BYTES_PER_S  # the tasks' P × P sums and the driver's copy
    return grad, hess


def choose_solver(n_rows: int, n_classes: int, n_features: int, fit_intercept: bool,
                  density: float = 1.0) -> tuple[str, str]:
    """("newton" | "lbfgs", one-line reason) by the rule in the module docstring.

    ``density`` is the fraction of non-zero entries of X (1 for dense blocks).
    """
    width = n_features + (1 if fit_intercept else 0)
    P = n_classes * width
    grad, hess = pass_seconds(n_rows, n_classes, n_features, fit_intercept, density)
    ratio = hess / grad
    if P > NEWTON_MAX_PARAMS:
        return "qn-newton-cg", (f"C·D̃ = {P} > {NEWTON_MAX_PARAMS}: no dense Hessian; L-BFGS's cheap passes, then a "
                                f"Newton-CG finish (Hessian-vector passes) to the exact optimum")
    if ratio <= NEWTON_MAX_PASS_RATIO:
        return "newton", (f"C·D̃ = {P} ≤ {NEWTON_MAX_PARAMS} and a Hessian pass ≈ {ratio:.1f}× a gradient pass "
                          f"(≤ {NEWTON_MAX_PASS_RATIO:g}): ~12 exact Newton passes")
    return "lbfgs", (f"a Hessian pass ≈ {ratio:.0f}× a gradient pass (> {NEWTON_MAX_PASS_RATIO:g}) over "
                     f"{n_rows} rows: L-BFGS's cheap passes win")


class HessianPlan(NamedTuple):
    """How prox-newton forms its quadratic model: the Hessian from every ``stride``-th row of each
    block, kept across steps while each cuts the KKT residual by ``reuse_ratio`` (0: a new Hessian
    at every iterate); ``seconds``: the fit's estimated wall time under the cost model."""

    stride: int
    reuse_ratio: float
    seconds: float


def hessian_plan(n_rows: int, n_classes: int, n_features: int, fit_intercept: bool,
                 density: float = 1.0) -> HessianPlan:
    """prox-newton's ``HessianPlan`` for the data's shape: sub-sample the Hessian's rows down to
    max(``HESSIAN_SAMPLE_PER_PARAM``·P, ``HESSIAN_SAMPLE_MIN``) (stride 1 below twice that), and reuse
    it across steps when ``PROX_REUSE_PASSES`` (Hessian, gradient) passes are estimated faster than
    ``PROX_NEWTON_PASSES`` Hessian passes. The gradient, J and the KKT residual are always exact:
    the plan changes the rate, not the optimum."""
    width = n_features + (1 if fit_intercept else 0)
    P = n_classes * width
    sample = max(HESSIAN_SAMPLE_PER_PARAM * P, HESSIAN_SAMPLE_MIN)
    stride = max(1, n_rows // sample) if n_rows >= 2 * sample else 1
    grad, hess = pass_seconds(n_rows, n_classes, n_features, fit_intercept, density,
                              hessian_rows=None if stride == 1 else -(-n_rows // stride))
    n_hess, n_grad = PROX_REUSE_PASSES
    reused, fresh = n_hess * hess + n_grad * grad, PROX_NEWTON_PASSES * hess
    if reused < fresh:
        return HessianPlan(stride, HESSIAN_REUSE_RATIO, reused)
    return HessianPlan(stride, 0.0, fresh)


def choose_nonsmooth_solver(n_rows: int, n_classes: int, n_features: int, fit_intercept: bool,
                            density: float = 1.0) -> tuple[str, str]:
    """("prox-newton" | "qn-newton-cg", one-line reason) for a problem with an L1 part or bounds:
    prox-newton when the Hessian fits (P ≤ ``NEWTON_MAX_PARAMS``) and its plan (``hessian_plan``:
    exact or sub-sampled Hessian, reused or not) is estimated no slower than qn-newton-cg's
    ``QN_NEWTON_CG_PASSES`` gradient passes; else qn-newton-cg."""
    width = n_features + (1 if fit_intercept else 0)
    P = n_classes * width
    if P > NEWTON_MAX_PARAMS:
        return "qn-newton-cg", (f"L1/bounds with C·D̃ = {P} > {NEWTON_MAX_PARAMS}: no dense Hessian; OWL-QN's gradient "
                                f"passes, then an orthant-wise Newton-CG finish to the exact optimum")
    grad, _ = pass_seconds(n_rows, n_classes, n_features, fit_intercept, density)
    plan = hessian_plan(n_rows, n_classes, n_features, fit_intercept, density)
    qn = QN_NEWTON_CG_PASSES * grad
    how = ("the exact Hessian" if plan.stride == 1 else f"the Hessian of every {plan.stride}th row") + (
        ", reused while each step halves the KKT residual" if plan.reuse_ratio else "")
    if plan.seconds <= qn:
        return "prox-newton", (f"L1/bounds, C·D̃ = {P} ≤ {NEWTON_MAX_PARAMS}: proximal Newton with {how} "
                               f"(≈ {plan.seconds:.3g} s estimated, qn-newton-cg ≈ {qn:.3g} s)")
    return "qn-newton-cg", (f"L1/bounds: OWL-QN's cheap passes, then an orthant-wise Newton-CG finish (≈ {qn:.3g} s "
                            f"estimated; proximal Newton with {how} ≈ {plan.seconds:.3g} s)")
