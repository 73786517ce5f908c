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
Python workers it started. Before either side unpickles anything, each proves it holds a random
per-pool key, shipped to the tasks inside their closure (as Spark ships any task) and never sent
on this channel: a challenge-response like ``multiprocessing.connection``'s
``deliver_challenge``/``answer_challenge``, with the task, the side that executes what it is
sent, checking the driver first (``_handshake_task``, ``_handshake_driver``). The driver listens
on a Unix socket in a fresh 0700 directory (other users cannot connect) or, where there is none,
on 127.0.0.1, and keeps that socket until the pool is closed, after its job ended: while a task of
the job may still connect, nobody else can bind its address. A retried task attempt, or one that
starts after the connect deadline, returns at once without connecting; its pass goes to a job.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import pickle
import queue
import re
import secrets
import shutil
import socket
import struct
import tempfile
import threading
import time
import weakref
from multiprocessing.connection import Connection, wait

from softmax_spark.spark.tasks import Inline, partition_sums

__all__ = ["local_cores", "local_slots", "run", "close", "IDLE_SECONDS"]

log = logging.getLogger("softmax_spark")

# A resident task with no request for this long ends (its core goes back to Spark). Between the
# passes of one fit the driver needs milliseconds; a Newton step's dense solve, a checkpoint write
# or a validation pass may need more, after which the tasks are started again (one job launch).
IDLE_SECONDS = 2.0
CONNECT_SECONDS = 60.0  # for every task of the resident job to start and connect back
# each read or write of the handshake, either side (a silent or slow peer is dropped after it;
# the driver handshakes every connection in its own thread, so it delays no other)
HANDSHAKE_SECONDS = 5.0
_MAX_HANDSHAKES = 64  # connections handshaking at once; more are closed unread
_KEY_BYTES = 32
_NONCE_BYTES = 32
_HELLO = b"softmax_spark resident 1 "

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


def _mac(key: bytes, role: bytes, first: bytes, second: bytes) -> bytes:
    return hmac.new(key, role + first + second, hashlib.sha256).digest()


def _io_timeout(sock, seconds: float) -> None:
    """Bound each blocking read and write on ``sock``'s descriptor (SO_RCVTIMEO/SO_SNDTIMEO, which
    ``Connection``'s plain reads and writes obey; 0 = no bound)."""
    value = struct.pack("ll", int(seconds), int((seconds % 1) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


class _Refused(Exception):
    """The peer did not prove it holds the key."""


def _handshake_task(conn: Connection, key: bytes) -> None:
    """The task's side: check the driver, then prove itself. Raises ``_Refused`` (or OSError,
    EOFError) before anything derived from the key is sent to a peer that has not proved it."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    conn.send_bytes(_HELLO + nonce)
    reply = conn.recv_bytes(2 * _NONCE_BYTES)  # longer: OSError, unread
    theirs, proof = reply[:_NONCE_BYTES], reply[_NONCE_BYTES:]
    if len(theirs) != _NONCE_BYTES or not hmac.compare_digest(proof, _mac(key, b"driver", nonce, theirs)):
        raise _Refused("the driver's proof is wrong")
    conn.send_bytes(_mac(key, b"task", theirs, nonce))


def _handshake_driver(conn: Connection, key: bytes) -> None:
    """The driver's side: answer the task's challenge, then check its proof. Reads at most a few
    dozen bytes from an unproved peer and never unpickles them."""
    hello = conn.recv_bytes(len(_HELLO) + _NONCE_BYTES)
    if len(hello) != len(_HELLO) + _NONCE_BYTES or not hello.startswith(_HELLO):
        raise _Refused("not a resident task")
    theirs, nonce = hello[len(_HELLO):], secrets.token_bytes(_NONCE_BYTES)
    conn.send_bytes(nonce + _mac(key, b"driver", theirs, nonce))
    if not hmac.compare_digest(conn.recv_bytes(64), _mac(key, b"task", nonce, theirs)):
        raise _Refused("the task's proof is wrong")


def _connect(address, key: bytes, deadline: float):
    """The task's authenticated connection to the driver, or None (no driver there, or one that
    did not prove itself)."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(max(0.1, deadline - time.time()))
        sock.connect(address)
        sock.settimeout(None)
        _io_timeout(sock, HANDSHAKE_SECONDS)
        if family == socket.AF_INET:
            _no_delay(sock)
        conn = Connection(os.dup(sock.fileno()))
        try:
            _handshake_task(conn, key)
        except BaseException:
            conn.close()
            raise
        _io_timeout(sock, 0)
        return conn
    except (OSError, EOFError, _Refused):
        return None
    finally:
        sock.close()


def _serve(address, key: bytes, idle_seconds: float, deadline: float | None = None):
    """The resident task's body: connect, check the driver and prove the key, answer requests
    until told to stop, until the driver goes, or after ``idle_seconds`` without a request. A
    retried attempt, or one started after ``deadline`` (``time.time()``), returns at once: the
    driver no longer waits for it, and its pass runs as a job."""
    if deadline is None:
        deadline = time.time() + CONNECT_SECONDS

    def serve(_rows):
        from pyspark import TaskContext  # inside the task: pyspark is loaded there already

        ctx = TaskContext.get()
        if (ctx is not None and ctx.attemptNumber() > 0) or time.time() > deadline:
            return iter(())
        conn = _connect(address, key, deadline)
        if conn is None:  # nothing was read from the peer, nothing run
            return iter(())
        timeout = CONNECT_SECONDS  # the first request comes when every task has connected
        try:
            while conn.poll(timeout):
                timeout = idle_seconds
                request = pickle.loads(conn.recv_bytes())
                if request is None:
                    break
                kernel, payload, parts, args = request
                try:
                    answer = [(i, next(partition_sums(Inline(payload), kernel, *args)(descriptors)))
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


def _listen():
    """(listening socket, its address, its private directory or None): a Unix socket in a fresh
    0700 directory (``mkdtemp``'s mode, whatever the umask) where the platform has them and the
    path fits, else 127.0.0.1 on a free port."""
    if hasattr(socket, "AF_UNIX"):
        directory = tempfile.mkdtemp(prefix="softmax_spark-resident-")
        path = os.path.join(directory, "s")
        if len(path.encode()) < 100:  # sun_path holds 104–108 bytes
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                server.bind(path)
                server.listen(128)
            except OSError:
                server.close()
                shutil.rmtree(directory, ignore_errors=True)
                raise
            return server, path, directory
        shutil.rmtree(directory, ignore_errors=True)
    server = socket.create_server(("127.0.0.1", 0), backlog=128)
    return server, server.getsockname(), None


def _unlisten(server, directory) -> None:
    server.close()
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


class _Pool:
    """``n_tasks`` resident tasks of one Spark job and their connections (driver side)."""

    def __init__(self, sc, n_tasks: int):
        self.sc, self.n_tasks = sc, n_tasks
        self.error = None
        self.passes = 0
        self.busy = False
        # a tag, not a job group: the job stays in the caller's group, so cancelling that cancels it
        self.tag = f"softmax_spark-resident-{secrets.token_hex(6)}"
        self.conns = []
        key = secrets.token_bytes(_KEY_BYTES)
        # kept until close(), after the job ended: no other process can bind the address meanwhile
        self.server, self.address, directory = _listen()
        self._unlisten = weakref.finalize(self, _unlisten, self.server, directory)
        try:
            deadline = time.time() + CONNECT_SECONDS
            self.thread = self._start_job(_serve(self.address, key, IDLE_SECONDS, deadline))
            try:
                self.conns = self._accept(key, deadline)
            except BaseException:
                sc.cancelJobsWithTag(self.tag)  # tasks still waiting for a core must not start later
                self.thread.join(10.0)
                raise
        except BaseException:
            self._unlisten()
            raise
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

    def _accept(self, key: bytes, deadline: float) -> list:
        """The ``n_tasks`` connections that proved the key, each handshaken in its own thread
        (a silent or slow connection delays no other); after the deadline, or if the job ended
        first, ConnectionError."""
        proved = queue.Queue()
        accepting = threading.Event()
        accepting.set()
        slots = threading.BoundedSemaphore(_MAX_HANDSHAKES)

        def handshake(sock):
            conn = Connection(os.dup(sock.fileno()))
            try:
                _handshake_driver(conn, key)
                _io_timeout(sock, 0)
            except (OSError, EOFError, _Refused) as exc:
                log.debug("resident channel: a connection refused (%s)", exc)
                conn.close()
                return
            finally:
                sock.close()
                slots.release()
            proved.put(conn)

        def accept_loop():
            self.server.settimeout(0.2)
            while accepting.is_set():
                try:
                    sock, _ = self.server.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not accepting.is_set() or not slots.acquire(blocking=False):
                    sock.close()
                    continue
                sock.settimeout(None)
                _io_timeout(sock, HANDSHAKE_SECONDS)
                if sock.family == socket.AF_INET:
                    _no_delay(sock)
                threading.Thread(target=handshake, args=(sock,), daemon=True).start()

        acceptor = threading.Thread(target=accept_loop, daemon=True)
        acceptor.start()
        conns = []
        try:
            while len(conns) < self.n_tasks:
                if time.time() > deadline or not self.thread.is_alive():
                    raise ConnectionError(f"{len(conns)} of {self.n_tasks} resident tasks connected")
                try:
                    conns.append(proved.get(timeout=0.2))
                except queue.Empty:
                    pass
        except BaseException:
            for conn in conns:
                conn.close()
            raise
        finally:
            accepting.clear()  # later connections: closed unread, or left unanswered in the backlog until close()
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
        """A task went away: end the others (they read EOF). If the job then succeeds — the
        tasks reached their idle timeout, or a crashed task's retry returned at once (``local[N,F]``)
        — None: run the pass as a job. A job that failed — cancelled by the caller's job group, as a
        job per pass would have been, or a Python worker that died with no retry left — fails the
        pass with Spark's error."""
        for conn in self.conns:
            conn.close()
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
        self._unlisten()


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
