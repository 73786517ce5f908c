"""What a penalty is: the protocol every term of the regulariser follows, and the one registry of them.

The objective is J(W, b) = data term + Σ_k P_k(W, b) over the registered penalties that the
configuration asks for. A penalty is one of two kinds:

- ``"smooth"``: twice differentiable (L2). It gives ``value``, ``gradient``, ``hvp``, ``hessian``,
  ``hessian_diag`` and ``feature_curvature`` in model coordinates (W of shape (C, D)); the
  problem adds them to the data term's and every solver can use it.
- ``"separable"``: a sum over coordinates of convex, possibly non-smooth functions (L1, box
  bounds as an indicator). It gives, for each coordinate of W and b, a weight γ of |·| and an
  interval [lo, hi] (``theta_parts``); ``separable.ThetaTerm`` combines every separable penalty
  into the one term the proximal solvers use (``prox``, ``project``, ``residual`` — the KKT
  residual, i.e. the distance of −∇(smooth part) to the subdifferential / normal cone).

Every penalty also says which solvers it allows (``solvers``: None — every solver that handles
its ``kind``, see ``solvers.registry`` — or a set of solver names), records itself for the
saved model (``to_dict``, read back by ``from_dict``), and is built from the training options
by ``from_config`` (None when the options do not ask for it).

Adding a penalty is one new module in this package (a class following the protocol, decorated
with ``@register``) and its import in ``penalties/__init__.py``.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

__all__ = ["Penalty", "SmoothPenalty", "SeparablePenalty", "PenaltyContext", "register", "unregister", "registered",
           "penalty_class", "requested_penalties", "from_record", "KINDS"]

KINDS = ("smooth", "separable")


@runtime_checkable
class Penalty(Protocol):
    """Common part: ``name`` (the registry key and the record's ``penalty`` entry), ``kind`` (one of
    ``KINDS``), ``solvers`` (None or a frozenset of solver names), ``value``, ``to_dict``."""

    name: str
    kind: str
    solvers: frozenset | None

    def value(self, coef) -> float: ...

    def to_dict(self) -> dict: ...


@runtime_checkable
class SmoothPenalty(Penalty, Protocol):
    """A twice-differentiable penalty on W (shape (C, D)); the intercept is never penalised."""

    def gradient(self, coef) -> np.ndarray: ...

    def hvp(self, direction) -> np.ndarray: ...

    def hessian(self, n_classes: int, n_features: int) -> np.ndarray: ...

    def hessian_diag(self, n_classes: int, n_features: int) -> np.ndarray: ...

    def feature_curvature(self, n_features: int) -> np.ndarray: ...

    def is_zero(self) -> bool: ...


@runtime_checkable
class SeparablePenalty(Penalty, Protocol):
    """Σ over coordinates of γ·|w| + indicator(lo ≤ w ≤ hi), in model coordinates."""

    def theta_parts(self, n_classes: int, n_features: int) -> dict: ...


class PenaltyContext:
    """What ``from_config`` may need besides the options: the shapes and the column statistics.

    Parameters
    ----------
    n_classes, n_features : C and D
    col_std : ndarray of shape (D,) — the columns' unbiased sample standard deviation (MLlib's)
    reference : bool — ``--parametrization reference`` (the last class pinned to 0)
    """

    def __init__(self, n_classes: int, n_features: int, col_std=None, reference: bool = False):
        self.n_classes, self.n_features = int(n_classes), int(n_features)
        self.col_std = col_std
        self.reference = bool(reference)


_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: add a penalty class to the registry under ``cls.name``. The class must set
    ``name`` and ``kind`` and define ``requested(cfg) -> bool``, ``from_config(cfg, context)`` and
    ``from_dict(record)``. Raises ValueError on a duplicate name or an unknown kind."""
    name, kind = getattr(cls, "name", None), getattr(cls, "kind", None)
    if not name or kind not in KINDS:
        raise ValueError(f"penalty class {cls.__name__} needs a name and a kind in {KINDS}, got {name!r}, {kind!r}")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"a penalty named {name!r} is already registered ({_REGISTRY[name].__name__})")
    for method in ("requested", "from_config", "from_dict"):
        if not callable(getattr(cls, method, None)):
            raise ValueError(f"penalty class {cls.__name__} has no {method}()")
    _REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (a test's temporary penalty); no error when absent."""
    _REGISTRY.pop(name, None)


def registered() -> dict[str, type]:
    """name → class of every registered penalty, in registration order."""
    return dict(_REGISTRY)


def penalty_class(name: str) -> type:
    """The registered class ``name``; ValueError naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown penalty {name!r}; registered: {', '.join(_REGISTRY)}") from None


def requested_penalties(cfg: Any) -> list[type]:
    """The registered penalty classes that the options ``cfg`` ask for (``cls.requested(cfg)``)."""
    return [cls for cls in _REGISTRY.values() if cls.requested(cfg)]


def from_record(name: str, record: dict):
    """Rebuild a penalty from its saved-model record (``to_dict``)."""
    return penalty_class(name).from_dict(record)


def _option(cfg, name: str, default=None):
    """cfg.name, or ``default`` for options objects that predate it."""
    return getattr(cfg, name, default)


Builder = Callable[[Any, PenaltyContext], Any]
