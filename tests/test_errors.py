"""The error types (``core.errors``): what the jobs map to exit codes."""

from softmax_spark.core.errors import DivergenceError, InputError, ModelFormatError, NoProgressError


def test_the_hierarchy_the_jobs_rely_on():
    assert issubclass(InputError, ValueError) and issubclass(ModelFormatError, InputError)
    assert issubclass(DivergenceError, RuntimeError) and issubclass(NoProgressError, RuntimeError)
    assert not issubclass(NoProgressError, InputError)
