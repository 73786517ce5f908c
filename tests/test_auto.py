"""``--optimizer auto``'s cost model (``solvers.auto``): numpy only."""

from softmax_spark.solvers import auto


def test_pass_seconds_grow_with_rows_and_the_hessian_costs_more():
    g1, h1 = auto.pass_seconds(10_000, 5, 20)
    g2, h2 = auto.pass_seconds(100_000, 5, 20)
    assert auto.PASS_OVERHEAD_S < g1 < g2 and h1 < h2 and g1 < h1


def test_the_newton_bound_and_the_reasons():
    name, why = auto.choose_solver(1000, 10, 500, True)  # P = 5010 > 4096
    assert name == "qn-newton-cg" and "no dense Hessian" in why  # L-BFGS, then a Newton-CG finish
    name, why = auto.choose_solver(2000, 5, 20, True)
    assert name == "newton" and "Hessian pass ≈" in why
    assert auto.choose_nonsmooth_solver(1000, 10, 500, True)[0] == "qn-newton-cg"
    # sparser data makes both passes cheaper by the same factor, the driver's factorisation does not shrink
    assert auto.pass_seconds(10_000, 5, 20, density=0.1)[0] < auto.pass_seconds(10_000, 5, 20)[0]


def test_the_nonsmooth_choice_sub_samples_the_hessian_on_many_rows():
    """1M × 64 × 10 (bench enet-dense): proximal Newton on a sub-sampled Hessian, estimated far
    cheaper than qn-newton-cg's gradient passes; a small set keeps the exact Hessian."""
    name, why = auto.choose_nonsmooth_solver(1_000_000, 10, 64, True)
    plan = auto.hessian_plan(1_000_000, 10, 64, True)
    assert name == "prox-newton" and plan.stride > 1 and f"every {plan.stride}th row" in why
    assert auto.hessian_plan(178, 3, 13, True) == (1, 0.0, auto.hessian_plan(178, 3, 13, True).seconds)
    assert -(-1_000_000 // plan.stride) >= auto.HESSIAN_SAMPLE_PER_PARAM * 650
