"""The penalties of the objective, one module each, registered in one place (``base.register``).

- ``l2.L2Penalty`` (smooth): λ Σ p_j w_cj², the ``--l2`` term.
- ``l1.L1`` (separable): λ₁ Σ ω_j |w_cj|, the ``--l1`` term.
- ``bounds.Bounds`` (separable): box constraints on W and b as an indicator.
- ``separable.L1Penalty`` / ``ThetaTerm``: every separable part summed into one term (model
  coordinates / the optimizer's θ), with its KKT residual.

``build(cfg, context)`` makes the objective's penalties from the training options: the smooth one
(``L2Penalty``) and the separable sum (``L1Penalty`` or None). The import order below is the
registry's order. A new penalty: one module here with a ``@register``-ed class, imported below.
"""

from __future__ import annotations

from softmax_spark.core.penalties.base import (
    KINDS,
    Penalty,
    PenaltyContext,
    SeparablePenalty,
    SmoothPenalty,
    from_record,
    penalty_class,
    register,
    registered,
    requested_penalties,
)
from softmax_spark.core.penalties.l2 import L2Penalty, feature_weights
from softmax_spark.core.penalties.l1 import L1, l1_feature_weights
from softmax_spark.core.penalties.bounds import BOUND_OPTIONS, Bounds
from softmax_spark.core.penalties.separable import L1Penalty, ThetaTerm, kkt_residual

__all__ = ["KINDS", "Penalty", "PenaltyContext", "SeparablePenalty", "SmoothPenalty", "from_record", "penalty_class",
           "register", "registered", "requested_penalties", "L2Penalty", "feature_weights", "L1",
           "l1_feature_weights", "BOUND_OPTIONS", "Bounds", "L1Penalty", "ThetaTerm", "kkt_residual", "build"]


def build(cfg, context: PenaltyContext):
    """(smooth penalty, separable sum or None) that the options ``cfg`` ask for.

    Every registered penalty whose ``requested(cfg)`` is true is built with ``from_config``
    (``InputError`` naming the option on a bad value). Smooth ones: exactly one is supported
    (the L2 term; ValueError otherwise). Separable ones are summed into one ``L1Penalty``.
    """
    smooth, separable = [], []
    for cls in requested_penalties(cfg):
        penalty = cls.from_config(cfg, context)
        if penalty is not None:
            (smooth if cls.kind == "smooth" else separable).append(penalty)
    if len(smooth) != 1:
        raise ValueError(f"exactly one smooth penalty is supported, the options ask for {[p.name for p in smooth]}")
    return smooth[0], L1Penalty.from_parts(separable)
