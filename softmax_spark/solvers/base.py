"""What every solver is, and how its state becomes a checkpoint.

A solver is three methods over a ``problem.Problem`` (or ``NumpyProblem``):

    init(theta, problem) -> state                      # may evaluate J (iteration 0)
    step(problem, state, iteration) -> (state, info)   # one iteration; info: history extras
    stop_reason(state, history) -> str | None          # its convergence test, after each step

``state`` is a NamedTuple whose first field is ``theta`` and whose every field is an ndarray, a
float or an int, so ``loop`` checkpoints and restores any solver's state by field name
(``state_to_checkpoint`` / ``state_from_checkpoint``) and a resumed run continues exactly.
``info`` holds ``objective`` (the J the history records for this iteration; default the state's
``objective`` field) and may add
e.g. ``step``, ``learning_rate``, ``newton_decrement``. An optional ``result(state) -> θ``
gives the parameters to report (default ``state.theta``; SGD's Polyak average differs).

A solver that cannot continue raises ``SolverStop(reason)`` from ``step`` (the loop stops
there, recording nothing for that iteration), or ``errors.NoProgressError`` when it made no
progress at all — never a claim of an optimum it did not reach.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = ["Solver", "SolverStop", "state_to_checkpoint", "state_from_checkpoint", "solver_result"]


@runtime_checkable
class Solver(Protocol):
    name: str

    def init(self, theta: np.ndarray, problem) -> NamedTuple: ...

    def step(self, problem, state, iteration: int) -> tuple[NamedTuple, dict]: ...

    def stop_reason(self, state, history: list[dict]) -> str | None: ...


class SolverStop(Exception):
    """Raised by ``Solver.step``: stop here with ``reason`` (the current state is the result)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def solver_result(solver, state) -> np.ndarray:
    """The parameters the solver reports for ``state``: ``solver.result(state)`` or ``state.theta``."""
    result = getattr(solver, "result", None)
    return result(state) if result is not None else state.theta


def state_to_checkpoint(state, prefix: str = "") -> tuple[dict, dict]:
    """A NamedTuple state → (arrays, scalars) keyed ``prefix + field``: ndarray fields to arrays,
    int/float fields to scalars (JSON). Anything else is a TypeError (it would not round-trip)."""
    arrays, scalars = {}, {}
    for name, value in zip(state._fields, state):
        if isinstance(value, np.ndarray):
            arrays[prefix + name] = value
        elif isinstance(value, (bool, np.bool_)):
            raise TypeError(f"state field {name!r} is a bool; use an int")
        elif isinstance(value, (int, np.integer)):
            scalars[prefix + name] = int(value)
        elif isinstance(value, (float, np.floating)):
            scalars[prefix + name] = float(value)
        else:
            raise TypeError(f"state field {name!r} is {type(value).__name__}; expected ndarray, int or float")
    return arrays, scalars


def state_from_checkpoint(state_cls, arrays: dict, scalars: dict, prefix: str = ""):
    """The inverse of ``state_to_checkpoint``: scalars are cast to the field's annotated type
    (JSON keeps no int/float distinction for numpy scalars). A missing field takes the
    NamedTuple's default when it has one (a field added since the checkpoint was written),
    else is a KeyError."""
    hints = getattr(state_cls, "__annotations__", {})
    values = []
    for name in state_cls._fields:
        key = prefix + name
        if key in arrays:
            values.append(np.asarray(arrays[key]))
            continue
        if key not in scalars and name in state_cls._field_defaults:
            values.append(state_cls._field_defaults[name])  # a field added later: its default
            continue
        value = scalars[key]
        kind = hints.get(name)
        if kind in (int, "int"):
            value = int(value)
        elif kind in (float, "float"):
            value = float(value)
        values.append(value)
    return state_cls(*values)
