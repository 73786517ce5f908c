"""Where pip installed pyspark: standard library only, so both the session set-up
(``spark.session``) and PySpark's worker daemon entry point (``softmax_spark.worker_daemon``, which
runs before numpy or pyarrow may be imported) can use it."""

from __future__ import annotations

import os

__all__ = ["installed_pyspark_of"]


def installed_pyspark_of(zip_path: str) -> str | None:
    """The installed ``pyspark`` package directory that ``zip_path`` belongs to — pip's layout,
    ``<dir>/pyspark/python/lib/pyspark.zip`` beside ``<dir>/pyspark/__init__.py`` — else None."""
    if os.path.basename(zip_path) != "pyspark.zip":
        return None
    package = os.path.dirname(os.path.dirname(os.path.dirname(zip_path)))  # <dir>/pyspark
    if os.path.basename(package) == "pyspark" and os.path.isfile(os.path.join(package, "__init__.py")):
        return package
    return None
