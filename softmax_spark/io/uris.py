"""URIs of the storage layer: a scheme picks the backend (``storage``); joining, naming and the
hidden siblings that staged and set-aside directories live under.

A plain path (``out/m1``, ``/data/m1``) or a ``file:`` URI is local; any other scheme (``hdfs://``,
``s3a://``, ``viewfs://``, …) is served by a Hadoop FileSystem. Pure string functions: no I/O.
"""

from __future__ import annotations

import os
import re
import uuid

from softmax_spark.core.errors import InputError

__all__ = ["scheme", "is_local", "local_path", "join", "basename", "parent", "hidden_sibling"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def scheme(uri: str) -> str:
    """The URI's scheme in lower case; '' for a plain path."""
    match = _SCHEME.match(str(uri))
    return match.group(1).lower() if match else ""


def is_local(uri: str) -> bool:
    """True for a plain path or a ``file:`` URI (the local backend; no Spark needed)."""
    return scheme(uri) in ("", "file")


def local_path(uri: str) -> str:
    """The OS path of a local URI: ``file:///a/b``, ``file:/a/b`` and ``/a/b`` → ``/a/b``;
    relative plain paths stay relative. Raises ``InputError`` for any other scheme or a
    ``file://host/…`` URI naming another host."""
    uri = str(uri)
    kind = scheme(uri)
    if kind == "":
        return uri
    if kind != "file":
        raise InputError(f"{uri} is not a local path")
    rest = uri[len("file:"):]
    if rest.startswith("//"):
        host, _, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise InputError(f"{uri} names host {host!r}; a file: URI must be local (file:///path)")
        return "/" + path
    return rest


def join(uri: str, *names: str) -> str:
    """``uri`` / name / … joined with '/' (the separator of both backends); ``uri`` may be an
    ``os.PathLike``."""
    uri = os.fspath(uri)
    for name in names:
        uri = name if uri == "" else (uri if uri.endswith("/") else uri + "/") + name
    return uri


def basename(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def parent(uri: str) -> str:
    """The directory holding ``uri`` ('.' for a bare relative name)."""
    stripped = uri.rstrip("/")
    if "/" not in stripped:
        return "."
    head = stripped.rsplit("/", 1)[0]
    if head == "" or head.endswith(":") or re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/]*", head):
        return head + "/"  # the root: "/", "file:/", "hdfs://namenode/"
    return head


def hidden_sibling(uri: str, tag: str) -> str:
    """``<parent>/.<name>.<tag>-<12 hex>``: a fresh hidden name next to ``uri``."""
    return join(parent(uri), f".{basename(uri)}.{tag}-{uuid.uuid4().hex[:12]}")
