"""The package version, in a module that imports nothing: any layer may read it (``softmax_spark.__version__``
is the same string)."""

__version__ = "0.1.0"
