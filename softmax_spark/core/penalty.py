"""The penalty term of the objective — kept as the import path of ``core.penalties``.

The penalties now live in the ``softmax_spark.core.penalties`` package, one module each (``l2``,
``l1``, ``bounds``, ``separable``) and one registry (``penalties.base``); every name this module
had is re-exported here unchanged.
"""

from __future__ import annotations

from softmax_spark.core.penalties import (  # noqa: F401
    L1,
    Bounds,
    L1Penalty,
    L2Penalty,
    ThetaTerm,
    feature_weights,
    kkt_residual,
    l1_feature_weights,
)

__all__ = ["L2Penalty", "L1Penalty", "ThetaTerm", "feature_weights", "l1_feature_weights", "kkt_residual"]
