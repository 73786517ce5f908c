"""One ``Backend`` per Spark session: how this package's Spark work runs there.

Three backends, picked once per session by ``backend_for`` from the session's type and master
(no flag), then asked by every module that used to decide "classic or Connect?" for itself:

- ``JobsBackend``: a classic session (RDD API). A pass is broadcast → ``mapPartitions`` →
  ``treeAggregate`` (or a collect merged in partition order) → destroy
  (``distributed.DistributedLoss``); ingest ``classic_ingest.ingest_classic``.
- ``ResidentBackend``: a classic session under a local master. The same, except that the passes
  run on ``resident`` tasks that stay for the fit (``DistributedLoss`` runs a pass as a job when
  they cannot).
- ``ConnectBackend``: Spark Connect (no RDD API, no broadcast, no JVM in this process): passes
  and ingest with ``mapInArrow`` only (``connect_backend``).

Each offers the same operations: ``ingest`` (input → executor-local blocks, a ``BlockData``),
``make_loss`` (a loss whose ``run`` is one pass of a block kernel), ``ship`` (a payload for a
task: broadcast or closure, one threshold), ``default_parallelism``, and the capabilities
``has_rdd`` / ``has_jvm`` that the job runner, scoring and shipping consult.

A new backend is one class here (and its engine module); nothing else asks which backend runs.
"""

from __future__ import annotations

import weakref
from typing import Protocol

__all__ = ["Backend", "BlockData", "JobsBackend", "ResidentBackend", "ConnectBackend", "backend_for", "is_connect",
           "default_parallelism", "register"]

# This module stays light (no numpy, no pyspark at import): the job runner, shipping and the
# Parquet reader ask it right after the session starts, while numpy still loads in the background.
# The engines register their operations here when imported (``register``): ``classic_ingest``
# and ``distributed`` for "classic", ``connect_backend`` for "connect"; ``ingest.ingest`` and
# ``losses.make_loss`` import them all, so every backend is complete by the time it is asked.
_ENGINES: dict = {}  # engine name → {"ingest": callable, "loss": DistributedLoss subclass}


def is_connect(obj) -> bool:
    """Whether ``obj`` (a SparkSession, DataFrame, or anything else) belongs to Spark Connect.

    By type, not by ``pyspark.sql.utils.is_remote()`` (which reads the process environment):
    a process may hold a classic and a Connect session at once. ``backend_for`` asks it once
    per session; the rest of the package asks the backend."""
    return type(obj).__module__.startswith("pyspark.sql.connect.")


def register(engine: str, **operations) -> None:
    """Register an engine's operations (``ingest=``, ``loss=``) under ``engine`` ("classic",
    "connect"): what a new backend's module calls once at import."""
    _ENGINES.setdefault(engine, {}).update(operations)



class BlockData(Protocol):
    """What an ingest returns on every backend (``classic_ingest.IngestedData``,
    ``connect_backend.ConnectIngestedData``): the blocks a loss runs its passes over, their
    ``summary`` (``data_summary.DataSummary``), and how to rebuild, check and release them."""

    blocks: object  # an RDD of BlockDescriptor (classic) or a cached descriptor DataFrame (Connect)
    summary: object
    run_id: str

    def rebuild(self) -> "BlockData":
        """Ingest the same input again after block files were lost (in place; returns self)."""

    def check_input(self) -> None:
        """Raise ``input_files.InputChangedError`` when an input file changed since the ingest."""

    def release(self) -> None:
        """Delete the block files and drop the cached descriptors (once)."""


class Backend:
    """The operations of the module docstring on one session: the classic ones here,
    ``ConnectBackend`` overrides. ``kind``: "jobs", "resident" or "connect"."""

    kind = "jobs"
    engine = "classic"  # whose registered operations run ingest and passes
    has_rdd = True  # RDD API: mapPartitions, treeAggregate, broadcast, SparkContext
    has_jvm = True  # a JVM in this process (Hadoop FileSystem, log level, py4j)

    def __init__(self, handle):
        # the SparkContext (classic) or the Connect session: held weakly, as the cache holds its key
        self._handle = weakref.ref(handle) if _weakrefable(handle) else (lambda: handle)

    @property
    def context(self):
        """The SparkContext (classic backends)."""
        return self._handle()

    def default_parallelism(self) -> int | None:
        """Partitions to ingest into by default (``sparkContext.defaultParallelism``)."""
        return self.context.defaultParallelism

    def _operation(self, name: str):
        try:
            return _ENGINES[self.engine][name]
        except KeyError:
            raise RuntimeError(f"no {name} registered for the {self.engine} engine (import "
                               "softmax_spark.spark.ingest and softmax_spark.spark.losses first)") from None

    def ingest(self, **args) -> BlockData:
        """``ingest.ingest``'s checked arguments → the blocks (``classic_ingest.IngestedData``)."""
        return self._operation("ingest")(**args)

    def make_loss(self, blocks, *args, **kwargs):
        """The engine's loss (``distributed.DistributedLoss``) over ``blocks`` (a ``BlockData``
        or its ``blocks``); same parameters as ``DistributedLoss``."""
        return self._operation("loss")(blocks, *args, **kwargs)

    def ship(self, payload):
        """``payload`` for a task as a handle with ``.value`` and ``destroy()``: in the closure
        when its ndarrays hold ≤ ``tasks.SHIP_INLINE_BYTES``, else a broadcast."""
        # numpy-level: imported by the first payload (numpy is loaded then), not at start-up
        from softmax_spark.spark.tasks import SHIP_INLINE_BYTES, Inline, payload_nbytes

        if payload_nbytes(payload) <= SHIP_INLINE_BYTES:
            return Inline(payload)
        return self.context.broadcast(payload)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class JobsBackend(Backend):
    """A classic session on a cluster master: a Spark job per pass."""


class ResidentBackend(JobsBackend):
    """A classic session under a local master: passes on ``resident`` tasks (``DistributedLoss``
    runs a pass as a job when they cannot run it)."""

    kind = "resident"


class ConnectBackend(Backend):
    """A Spark Connect session: ``mapInArrow`` only, payloads in the plan, partitions' sums merged
    on the driver (``connect_backend``)."""

    kind = "connect"
    engine = "connect"
    has_rdd = False
    has_jvm = False

    def default_parallelism(self) -> int | None:
        """``spark.default.parallelism`` when the server sets it, else None: keep the input's
        partitions (Connect has no SparkContext to ask)."""
        value = self._handle().conf.get("spark.default.parallelism", None)
        try:
            return int(value) if value else None
        except ValueError:
            return None

    def ingest(self, **args) -> BlockData:
        args["n_partitions"] = args.get("n_partitions") or self.default_parallelism()
        return super().ingest(**args)

    def ship(self, payload):
        """Always in the closure (the plan): Connect has no broadcast."""
        from softmax_spark.spark.tasks import Inline  # numpy-level: see ``Backend.ship``

        return Inline(payload)


_BACKENDS = weakref.WeakKeyDictionary()  # session (classic: its SparkContext) → Backend


def _weakrefable(obj) -> bool:
    try:
        weakref.ref(obj)
        return True
    except TypeError:
        return False


def _session_key(obj):
    """(key object, session) for a SparkSession, a ``session.LazySession``, a DataFrame (or a
    ``parquet_input.ParquetFiles``), an RDD or a SparkContext: a classic one is keyed by its
    SparkContext (one backend per context), a Connect one by its session. Asked of the type, never of the object: a ``LazySession`` answers any other attribute by
    starting its session, and a DataFrame any attribute name with a Column."""
    kind = type(obj)
    if hasattr(kind, "sparkSession") or "sparkSession" in getattr(obj, "__dict__", {}):
        # a DataFrame (classic or Connect), or a stand-in for one (``parquet_input.ParquetFiles``)
        obj = obj.sparkSession
        kind = type(obj)
    if is_connect(obj):
        return obj, obj
    if hasattr(kind, "mapPartitions"):  # an RDD
        return obj.context, obj.context
    if hasattr(kind, "sparkContext") or "sparkContext" in getattr(obj, "__dict__", {}):  # a session, lazy or not
        return obj.sparkContext, obj
    return obj, obj  # a SparkContext


def backend_for(obj) -> Backend:
    """The ``Backend`` of the session behind ``obj`` (a SparkSession, ``LazySession``, DataFrame,
    RDD or SparkContext), made on the first call and kept while the session lives."""
    key, session = _session_key(obj)
    try:
        found = _BACKENDS.get(key)
    except TypeError:  # not weakly referable: not cached
        found = None
    if found is not None:
        return found
    if is_connect(session):
        backend = ConnectBackend(key)
    elif str(getattr(key, "master", "")).startswith("local"):  # resident.local_cores' masters
        backend = ResidentBackend(key)
    else:
        backend = JobsBackend(key)
    try:
        _BACKENDS[key] = backend
    except TypeError:
        pass
    return backend


def default_parallelism(spark) -> int | None:
    """``backend_for(spark).default_parallelism()``."""
    return backend_for(spark).default_parallelism()
