"""Peak memory of a process tree, sampled from /proc (Linux only, no psutil needed).

``TreeSampler(pid)`` is a thread that, every ``interval`` seconds, finds every descendant of
``pid`` (through the ppid field of /proc/<pid>/stat) and reads each one's RSS (/proc/<pid>/statm)
and PSS (/proc/<pid>/smaps_rollup: shared pages divided among the processes sharing them, so the
PSS of forked Python workers adds up without counting their common pages twice). Each process is
put in a category from its command line:

- ``jvm``: the Spark driver JVM (in local mode it also runs the executor's tasks);
- ``python_driver``: the Python process running the submitted script;
- ``python_workers``: the ``pyspark.daemon`` and the workers it forks;
- ``other``: anything else (the spark-submit shell wrapper, if it has not exec'ed).

RSS is read every sample; the process list and PSS every ``tree_every`` / ``pss_every`` samples
(PSS of a big JVM is costly to read). It keeps the peak over samples of the whole tree's sums and of each category's sums.
"""

from __future__ import annotations

import os
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def _proc_parents() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2 :].split()
        if len(rest) < 2:
            continue
        children.setdefault(int(rest[1]), []).append(int(name))
    return children


def descendants(root: int) -> list[int]:
    children = _proc_parents()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return None


def _pss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def classify(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    if not argv or not argv[0]:
        return None
    exe = os.path.basename(argv[0])
    joined = b" ".join(argv)
    if exe == b"java":
        return "jvm"
    if b"pyspark.daemon" in joined or b"pyspark.worker" in joined:
        return "python_workers"
    if exe.startswith(b"python"):
        return "python_driver"
    return "other"


class TreeSampler:
    CATEGORIES = ("jvm", "python_driver", "python_workers", "other")

    def __init__(self, pid: int, interval: float = 0.2, with_pss: bool = True, pss_every: int = 10,
                 tree_every: int = 5):
        self.pid, self.interval, self.with_pss = pid, interval, with_pss
        # smaps_rollup walks the page tables (≈ 20 ms for a JVM with a big heap on a busy box) and
        # the tree scan reads every /proc/<pid>/stat: both are refreshed less often than RSS, so
        # the sampler itself stays at a few % of one core.
        self.pss_every, self.tree_every = max(1, pss_every), max(1, tree_every)
        self._tree: list[int] = []
        self._cats: dict[int, str] = {}
        self._pss_cache: dict[int, int] = {}
        self.samples = 0
        self.max_processes = 0
        self.peak = {"rss": 0, "pss": 0}
        self.peak_by_category = {c: {"rss": 0, "pss": 0} for c in self.CATEGORIES}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="procmem", daemon=True)
        self.seconds_sampling = 0.0

    def sample_once(self) -> None:
        t0 = time.perf_counter()
        totals = {"rss": 0, "pss": 0}
        by_cat = {c: {"rss": 0, "pss": 0} for c in self.CATEGORIES}
        n = 0
        if self.samples % self.tree_every == 0 or not self._tree:
            self._tree = descendants(self.pid)
            # a pid's command line changes once, when spark-submit's shell execs java: re-read
            self._cats = {pid: classify(pid) for pid in self._tree}
        refresh_pss = self.with_pss and self.samples % self.pss_every == 0
        for pid in self._tree:
            cat = self._cats.get(pid)
            rss = _rss(pid)
            if cat is None or rss is None:
                continue  # gone already
            if refresh_pss or (self.with_pss and pid not in self._pss_cache):
                self._pss_cache[pid] = _pss(pid) or 0
            pss = self._pss_cache.get(pid, 0)
            n += 1
            totals["rss"] += rss
            totals["pss"] += pss
            by_cat[cat]["rss"] += rss
            by_cat[cat]["pss"] += pss
        self.samples += 1
        self.max_processes = max(self.max_processes, n)
        for k in totals:
            self.peak[k] = max(self.peak[k], totals[k])
        for c in self.CATEGORIES:
            for k in ("rss", "pss"):
                self.peak_by_category[c][k] = max(self.peak_by_category[c][k], by_cat[c][k])
        self.seconds_sampling += time.perf_counter() - t0

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception:  # never let the sampler kill the benchmark
                pass
            self._stop.wait(self.interval)

    def start(self) -> "TreeSampler":
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.result()

    def result(self) -> dict:
        return {
            "peak_rss_bytes": self.peak["rss"],
            "peak_pss_bytes": self.peak["pss"],
            "peak_by_category": self.peak_by_category,
            "samples": self.samples,
            "interval_seconds": self.interval,
            "max_processes": self.max_processes,
            "sampler_cpu_seconds": round(self.seconds_sampling, 3),
            "pss_every_samples": self.pss_every,
            "tree_every_samples": self.tree_every,
            "note": "peaks of per-sample sums over the spark-submit process tree; RSS counts "
            "pages shared between forked workers once per process, PSS divides them (PSS is "
            "refreshed every pss_every_samples samples, RSS every sample)",
        }
