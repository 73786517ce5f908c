"""Error types. ``InputError`` is bad user input or configuration: jobs exit 2 with its message."""


class InputError(ValueError):
    """Bad input data, configuration or model directory; the message is one line saying what
    (column, row or partition) and what was expected."""


class ModelFormatError(InputError):
    """A model or checkpoint directory that is not ours, or of an unknown format version."""


class DivergenceError(RuntimeError):
    """The objective became NaN or infinite during training."""


class NoProgressError(RuntimeError):
    """The optimizer could not decrease the objective although it is not at an optimum."""
