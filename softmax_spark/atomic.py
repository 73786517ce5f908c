"""Kept for imports written before ``storage``: atomic publication now lives in
``softmax_spark.storage`` (local paths and any Hadoop URI alike)."""

from __future__ import annotations

from .storage import atomic_directory, check_writable, publish

__all__ = ["atomic_directory", "check_writable", "publish_directory"]


def publish_directory(tmp: str, path: str) -> None:
    """Rename the finished directory ``tmp`` to ``path`` (``storage.publish``)."""
    publish(tmp, path)
