"""Error types. ``InputError`` is bad user input or configuration: jobs exit 2 with its message;
``DivergenceError`` and ``NoProgressError`` end a training run with exit 1 and one line."""


class InputError(ValueError):
    """Bad input data, configuration or model directory; the message is one line saying what
    (column, row or partition) and what was expected."""


class ModelFormatError(InputError):
    """A model or checkpoint directory that is not ours, or of an unknown format version."""


class DivergenceError(RuntimeError):
    """The objective became NaN or infinite during training."""


class NoProgressError(RuntimeError):
    """A solver could not decrease the objective at all from where it started: it is not at an
    optimum, and no model is written (the jobs exit 1 with this one line)."""
