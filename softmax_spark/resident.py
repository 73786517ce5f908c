"""Resident tasks: in local mode, one Spark task per core stays for a whole fit and runs every pass.

A pass as ``distributed.DistributedLoss`` runs it by default is one Spark job: the driver submits
it, the scheduler launches a task per partition, each Python worker unpickles the task, runs the
block kernel and sends its sums back. On local[2] that round trip cost 23–40 ms a pass before any
arithmetic, plus the scheduler's and the JIT compiler's CPU taken from the two cores the kernels
run on. Here one Spark job starts ``n`` tasks that connect back to the driver and stay: each pass is
then a message to each task — (kernel, payload, the partitions' block descriptors) — and a message
back with each partition's (accumulator, missing partitions), merged on the driver in partition
order exactly as ``DistributedLoss``'s collect path merges them: the sums of a job per pass, bit
for bit, wherever that collects (at the default depth 2, up to 5 partitions; beyond, its
``treeAggregate`` adds in another order, equal to rounding).

Only in local mode (``local_slots``): there every block file is on this machine, so any task can
read any partition's blocks (a task takes several partitions when there are more partitions than
cores), and Spark's own retry and executor-loss machinery has nothing to protect that the
fallback below does not. Elsewhere the passes stay Spark jobs.

While the tasks are resident they hold every core, so a Spark job started by this process would
wait for them: ``close()`` ends them first. ``DistributedLoss`` calls it before any job of its own;
``ingest.IngestedData.release`` before deleting blocks. A task that gets no request for
``IDLE_SECONDS`` ends by itself (so a job started after the last pass, by code that did not close
them, waits at most that long), and the driver starts new ones on the next pass. A job another
thread starts while a fit is running waits for the fit to end.

If a task ends, cannot connect, or raises, ``run`` returns None and the caller runs that pass as a
Spark job, which reports bad input as it always did. Only a resident job that Spark failed or
cancelled (through the caller's job group) fails the pass, with Spark's error, as that pass's job
would have.

Requests are pickled with PySpark's cloudpickle, as Spark ships a task; answers (accumulators)
with pickle; both through ``multiprocessing.connection.Connection`` between this driver and the
Python workers it started; a task proves itself with a random token shipped in its closure
before the driver reads anything from it. The listening socket is bound to 127.0.0.1.
"""

from __future__ import annotations

import hmac
import logging
import os
import pickle
import re
import secrets
import socket
import threading
import time
from multiprocessing.connection import Connection, wait

__all__ = ["local_cores", "local_slots", "run", "close", "IDLE_SECONDS"]

log = logging.getLogger("softmax_spark")

# A resident task with no request for this long ends (its core goes back to Spark). Between the
# passes of one fit the driver needs milliseconds; a Newton step's dense solve, a checkpoint write
# or a validation pass may need more, after which the tasks are started again (one job launch).
IDLE_SECONDS = 2.0
CONNECT_SECONDS = 60.0  # for every task of the resident job to start and connect back
_TOKEN_BYTES = 32

_lock = threading.RLock()  # one pass at a time through the pool; held while starting or closing it
_pool = None  # the running _Pool, or None


def local_cores(master: str, available=None) -> int | None:
    """Cores of a local master — ``local`` 1, ``local[N]`` and ``local[N,F]`` N, ``local[*]``
    ``available()`` (Spark's: the JVM's available processors; default ``os.cpu_count``) — or None
    for any other master (Spark's own master URL forms)."""
    found = re.fullmatch(r"local(?:\[\s*(\*|\d+)\s*(?:,\s*\d+\s*)?\])?", master or "")
    if not found:
        return None
    cores = found.group(1)
    if cores == "*":
        return max(1, int(available() if available else os.cpu_count() or 1))
    return 1 if cores is None else int(cores)


def local_slots(sc) -> int | None:
    """Tasks that can run at once under a local master (its cores // ``spark.task.cpus``), or
    None for any other master."""
    # local[*] is the JVM's count, which follows cgroup limits and CPU affinity (os.cpu_count does not)
    cores = local_cores(sc.master, lambda: sc._jvm.java.lang.Runtime.getRuntime().availableProcessors())
    if cores is None:
        return None
    return cores // max(1, int(sc.getConf().get("spark.task.cpus", "1")))


def _no_delay(sock) -> None:
    """Send each write at once (TCP_NODELAY). ``Connection`` writes a message over 16 KiB as a
    header and then its body; with Nagle's algorithm the body waited for the header's ACK, which
    the reader delays: 40 ms more per message, measured on every pass of a 784 × 10 model (a
    pass went from 0.14 s to 0.075–0.088 s, the kernel alone 0.072–0.086 s)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _serve(address, token: bytes, idle_seconds: float):
    """The resident task's body: connect, prove the token, answer requests until told to stop,
    until the driver goes, or after ``idle_seconds`` without a request."""

    def serve(_rows):
        from .distributed import _Inline, _partition_sums

        sock = socket.create_connection(address, timeout=CONNECT_SECONDS)
        sock.settimeout(None)
        _no_delay(sock)
        sock.sendall(token)
        conn = Connection(sock.detach())
        timeout = CONNECT_SECONDS  # the first request comes when every task has connected
        try:
            while conn.poll(timeout):
                timeout = idle_seconds
                request = pickle.loads(conn.recv_bytes())
                if request is None:
                    break
                kernel, payload, parts, args = request
                try:
                    answer = [(i, next(_partition_sums(_Inline(payload), kernel, *args)(descriptors)))
                              for i, descriptors in parts]
                except Exception as exc:  # the driver reruns the pass as a Spark job, which reports it
                    answer = RuntimeError(f"{type(exc).__name__}: {exc}")
                conn.send(answer)
        except (EOFError, OSError):
            pass  # the driver closed the pool
        finally:
            conn.close()
        return iter(())

    return serve


class _Pool:
    """``n_tasks`` resident tasks of one Spark job and their connections (driver side)."""

    def __init__(self, sc, n_tasks: int):
        self.sc, self.n_tasks = sc, n_tasks
        self.error = None
        self.passes = 0
        self.busy = False
        # a tag, not a job group: the job stays in the caller's group, so cancelling that cancels it
        self.tag = f"softmax_spark-resident-{secrets.token_hex(6)}"
        token = secrets.token_bytes(_TOKEN_BYTES)
        server = socket.create_server(("127.0.0.1", 0))
        try:
            serve = _serve(server.getsockname(), token, IDLE_SECONDS)
            self.thread = self._start_job(serve)
            try:
                self.conns = self._accept(server, token)
            except BaseException:
                sc.cancelJobsWithTag(self.tag)  # tasks still waiting for a core must not start later
                raise
        finally:
            server.close()
        self.last_used = time.monotonic()

    def _start_job(self, serve):
        from pyspark import InheritableThread

        def job():
            try:
                self.sc.addJobTag(self.tag)
                self.sc.setInterruptOnCancel(True)
                self.sc.setJobDescription("softmax_spark: resident tasks")
                self.sc.parallelize(range(self.n_tasks), self.n_tasks).mapPartitions(serve).collect()
            except Exception as exc:  # cancelled (by close() or by the caller's job group), or a task died
                self.error = exc

        thread = InheritableThread(target=job, daemon=True)
        thread.start()
        return thread

    def _accept(self, server, token: bytes) -> list:
        conns = []
        deadline = time.monotonic() + CONNECT_SECONDS
        server.settimeout(0.2)
        while len(conns) < self.n_tasks:
            if time.monotonic() > deadline or not self.thread.is_alive():
                for conn in conns:
                    conn.close()
                raise ConnectionError(f"{len(conns)} of {self.n_tasks} resident tasks connected")
            try:
                sock, _ = server.accept()
            except socket.timeout:
                continue
            sock.settimeout(5.0)
            try:
                proof = sock.recv(_TOKEN_BYTES, socket.MSG_WAITALL)
            except OSError:
                proof = b""
            if not hmac.compare_digest(proof, token):  # not one of ours: never read from it
                sock.close()
                continue
            sock.settimeout(None)
            _no_delay(sock)
            conns.append(Connection(sock.detach()))
        return conns

    def fresh(self) -> bool:
        """Whether the tasks are surely still there (well inside their idle timeout)."""
        return not self.busy and self.thread.is_alive() and time.monotonic() - self.last_used < IDLE_SECONDS / 2

    def run(self, kernel, payload, parts, args):
        """Each partition's (accumulator, missing) in ``parts``' order, or None if a task failed."""
        from pyspark import cloudpickle

        shares = [[(i, d) for i, d in enumerate(parts) if i % self.n_tasks == k] for k in range(self.n_tasks)]
        # stays True if this pass is interrupted (KeyboardInterrupt): its answers may still come,
        # so these tasks must never serve another pass
        self.busy = True
        first_answer = None  # when the first task went idle: its idle timeout runs from there
        try:
            for conn, share in zip(self.conns, shares):
                # cloudpickle, as Spark ships a task: a kernel class defined in a notebook travels too
                conn.send_bytes(cloudpickle.dumps((kernel, payload, share, args)))
            answers = {}
            pending = list(self.conns)
            while pending:
                ready = wait(pending, timeout=1.0)
                if not ready and not self.thread.is_alive():
                    return self._ended()
                for conn in ready:
                    answer = conn.recv()
                    first_answer = first_answer or time.monotonic()
                    if isinstance(answer, Exception):
                        log.info("resident task failed (%s); the pass runs as a Spark job", answer)
                        return None
                    answers.update(answer)
                    pending.remove(conn)
        except (EOFError, OSError):
            return self._ended()
        except Exception as exc:  # e.g. a payload cloudpickle cannot pickle: a job may still run it
            log.info("resident pass failed (%s); the pass runs as a Spark job", exc)
            return None
        self.last_used = first_answer or time.monotonic()
        self.passes += 1
        self.busy = False
        return [answers[i] for i in range(len(parts))]

    def _ended(self):
        """A task went away. After their idle timeout the tasks end and the job succeeds: None,
        run the pass as a job. A job that failed — cancelled by the caller's job group, as a job per
        pass would have been, or a Python worker that died — fails the pass with Spark's error."""
        self.thread.join(10.0)
        if self.error is not None:
            raise self.error
        return None

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send_bytes(pickle.dumps(None))
            except OSError:
                pass
            conn.close()
        self.thread.join(10.0)
        if self.thread.is_alive():  # a task did not end (stuck in a kernel): cancel the job
            self.sc.cancelJobsWithTag(self.tag)
            self.thread.join(10.0)


def run(sc, slots: int, kernel, payload, parts: list, args: tuple):
    """One pass on the resident tasks: ``slots`` is ``local_slots(sc)``, ``parts`` each
    partition's block descriptors (in partition order), ``args`` the rest of
    ``distributed._partition_sums``' arguments after the kernel. Returns each partition's
    (accumulator, missing partitions), or None when the pass could not run there (no local master,
    a task failed or went): run it as a Spark job then. Starts min(partitions, slots) tasks when
    none are running; with more partitions than tasks, task k takes partitions k, k + n, …."""
    global _pool
    if not slots:
        return None
    with _lock:
        if _pool is not None and (_pool.sc is not sc or min(len(parts), slots) > _pool.n_tasks or not _pool.fresh()):
            close()
        if _pool is None:
            try:
                _pool = _Pool(sc, min(len(parts), slots))
            except Exception as exc:
                log.info("resident tasks did not start (%s); passes run as Spark jobs", exc)
                return None
        try:
            result = _pool.run(kernel, payload, parts, args)
        except BaseException:  # the job failed or was cancelled, or KeyboardInterrupt: end them
            close()
            raise
        if result is None:
            close()
        return result


def close(sc=None) -> None:
    """End the resident tasks (of ``sc``, or whichever are running): their cores go back to Spark."""
    global _pool
    with _lock:
        if _pool is not None and (sc is None or _pool.sc is sc):
            pool, _pool = _pool, None
            pool.close()
