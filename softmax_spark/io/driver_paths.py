"""Which paths Spark would read from this machine's disk, decided before any session starts.

``spark_local_path`` resolves a job's path argument the way Spark will: a ``file:`` URI is local,
a plain path is local unless Hadoop's default filesystem (``fs.defaultFS``: spark-submit's JVM,
spark-defaults.conf or core-site.xml) is another one, any other scheme is not. The fail-fast
checks of the jobs (``cli.checks``) and the footer-only Parquet reader (``spark.parquet_input``)
use it; ``storage.local_path`` is the other question (the OS path of a URI known to be local).
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from softmax_spark.io import storage

__all__ = ["spark_local_path", "GLOB_CHARS"]

GLOB_CHARS = set("*?[{")  # a path holding one of these is a Hadoop glob


def spark_local_path(path: str) -> str | None:
    """The local filesystem path that ``path`` names, or None when only Spark can answer.

    A ``file:`` URI (``file:/p``, ``file:///p``, ``file://localhost/p``) is local. A plain path
    is local unless Hadoop's default filesystem (``fs.defaultFS``) is another one — Spark
    resolves plain paths against it (e.g. HDFS on a YARN cluster). Any other scheme (hdfs://,
    s3a://, viewfs://, …) gives None.

    Unlike ``storage.local_path`` (the OS path of a URI already known to be local; raises
    otherwise), this answers *whether* Spark would read ``path`` from this machine's disk, before
    any session exists: what the jobs' fail-fast checks and ``parquet_input`` need.
    """
    kind = storage.scheme(path)  # the one scheme rule (``uris._SCHEME``)
    if kind == "":
        return path if _default_fs_is_local() else None
    if kind != "file":
        return None
    parsed = urlparse(path)
    if parsed.netloc not in ("", "localhost"):
        return None
    return parsed.path or "/"


def _default_fs_is_local() -> bool:
    """Whether plain paths are local files: fs.defaultFS unset or file:. Under spark-submit the
    driver's JVM is already running (its SparkContext is not): ask its Hadoop configuration and
    system properties. As plain ``python``, read the configuration files the JVM would."""
    fs = None
    port = os.environ.get("PYSPARK_GATEWAY_PORT")
    if port and _DEFAULT_FS.get(port) is not None:  # a JVM's configuration does not change: ask once
        return _DEFAULT_FS[port]
    if port:
        try:
            from pyspark import SparkContext

            SparkContext._ensure_initialized()  # connects to spark-submit's JVM; starts no context
            jvm = SparkContext._jvm
            fs = (jvm.java.lang.System.getProperty("spark.hadoop.fs.defaultFS")
                  or jvm.org.apache.hadoop.conf.Configuration().get("fs.defaultFS"))
        except Exception:  # noqa: BLE001 - unknown: let Spark answer
            return False
        _DEFAULT_FS[port] = fs is None or str(fs).lower().startswith("file:")
        return _DEFAULT_FS[port]
    fs = _configured_default_fs()
    return fs is None or str(fs).lower().startswith("file:")


_DEFAULT_FS: dict = {}  # spark-submit's gateway port → whether plain paths are local (each call costs JVM round trips)


def _configured_default_fs() -> str | None:
    """fs.defaultFS from spark-defaults.conf (spark.hadoop.fs.defaultFS) or a core-site.xml."""
    conf_dir = os.environ.get("SPARK_CONF_DIR") or (
        os.path.join(os.environ["SPARK_HOME"], "conf") if os.environ.get("SPARK_HOME") else None)
    if conf_dir and os.path.isfile(os.path.join(conf_dir, "spark-defaults.conf")):
        with open(os.path.join(conf_dir, "spark-defaults.conf")) as f:
            for line in f:
                parts = line.strip().split(None, 1)
                if len(parts) == 2 and parts[0] == "spark.hadoop.fs.defaultFS":
                    return parts[1].strip()
    for env in ("HADOOP_CONF_DIR", "YARN_CONF_DIR"):
        site = os.path.join(os.environ.get(env) or "/nonexistent", "core-site.xml")
        if os.path.isfile(site):
            import xml.etree.ElementTree as ET

            try:
                for prop in ET.parse(site).getroot().iter("property"):
                    if (prop.findtext("name") or "").strip() == "fs.defaultFS":
                        return (prop.findtext("value") or "").strip()
            except ET.ParseError:
                return "unknown:"  # let Spark read it
    return None
