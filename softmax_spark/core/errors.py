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


# The column-type phrases of every type fault, one wording for the driver's schema check
# (``spark.schema.check_columns``) and the executors' Arrow batches (``core.features``).
VECTOR_EXPECTED = "expected array<double>, array<float> or an ml Vector (dense or sparse)"
NUMERIC_EXPECTED = "expected a numeric column (byte, short, int, long, float, double, decimal or boolean)"
WEIGHT_EXPECTED = "expected numeric sample weights"
LABEL_EXPECTED = "expected an orderable label (int, string, …)"


def type_error(name: str, type_name, expected: str) -> InputError:
    """``column '<name>' is <type_name>, <expected>`` as an InputError (``expected``: one of the
    ``*_EXPECTED`` phrases)."""
    return InputError(f"column '{name}' is {type_name}, {expected}")
