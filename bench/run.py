"""Benchmark orchestrator: our trainer (jobs/train.py) against MLlib's LogisticRegression.

    .venv/bin/python bench/run.py                          # the full run (1M × 64 × 10, 3 repeats, scaling)
    .venv/bin/python bench/run.py --rows 20000 --repeats 1 --skip-scaling    # a smoke run
    .venv/bin/python bench/run.py --only mllib ...         # the baseline alone

Steps (bench/README.md says what each number means):

1. make (or reuse) the data set with bench/make_data.py;
2. ``--repeats`` times, alternating the order each repeat (ours first on even repeats, MLlib first
   on odd ones), with the same spark-submit settings for both:
   (a) ``spark-submit jobs/train.py --optimizer lbfgs --tol --l2 --max-iter`` and
   (b) ``spark-submit bench/mllib_fit.py`` (regParam = 2·l2, standardization off, same tol/maxIter),
   then (e) ``spark-submit jobs/train.py --optimizer sgd --batch-fraction 0.1 --max-iter 20``;
   each whole process is timed and its process tree's memory sampled every 0.2 s;
3. (d) the numpy bound, bench/numpy_bound.py, in its own process;
4. J(W, b) of each solution, computed here in numpy with softmax_spark.core.loss on the same rows,
   and the check that both final objectives agree within ``--agree-rtol`` (LOUD when not);
5. the scaling run (time per pass against rows), unless ``--skip-scaling``;
6. medians and ratios to stdout, bench/results/raw/<name>.json and .md, and bench/RESULTS.md
   (the sections of the workloads run, with commit, machine, load and command: bench/results_md.py).

Exit status: 0 when everything asked for ran and the objectives agree; 2 when our trainer does
not exist yet (everything else still runs); 1 when a run failed; 3 when the objectives disagree.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

import make_data  # noqa: E402
import solvers  # noqa: E402
from procmem import TreeSampler  # noqa: E402

EXIT_OK, EXIT_FAILED, EXIT_NO_TRAINER, EXIT_MISMATCH = 0, 1, 2, 3
KEY_VALUE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(-?[0-9][0-9.eE+-]*)\b")
EVAL_COUNT_KEYS = ("n_evals", "evals", "function_evals", "n_function_evals", "nfev", "passes",
                   "n_passes", "gradient_passes", "n_gradient_passes")
ROW_COUNT_KEYS = ("rows", "n_rows", "batch_rows", "batch_size", "rows_seen", "examples")


# --------------------------------------------------------------------------------------------
# small helpers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loud(lines: list[str]) -> None:
    bar = "!" * 78
    text = "\n".join([bar, bar] + [f"!!! {line}" for line in lines] + [bar, bar])
    print(text, flush=True)
    print(text, file=sys.stderr, flush=True)


def median(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def parse_key_values(text: str) -> dict:
    """The last ``key=<number>`` of each key printed on stdout (e.g. ``cached_bytes=123``)."""
    out = {}
    for m in KEY_VALUE.finditer(text):
        try:
            v = float(m.group(2))
        except ValueError:
            continue
        out[m.group(1)] = int(v) if v.is_integer() and "." not in m.group(2) else v
    return out


SPARK_LOG_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARN|DEBUG) ")


def tail(path: str, n: int = 30) -> str:
    """The end of a log, skipping Spark's INFO/WARN lines; from the last Python traceback if any."""
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return ""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if starts:
        lines = lines[starts[-1]:]
    lines = [line for line in lines if not SPARK_LOG_LINE.match(line)]
    return "".join(lines[:n] if starts else lines[-n:])


def shown(path: str) -> str:
    """A path relative to the repository when it lies inside it, else as given."""
    return os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else path


def spark_submit_path() -> str:
    """spark-submit next to this interpreter (the venv's), else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    if os.path.exists(here):
        return here
    found = shutil.which("spark-submit")
    if not found:
        raise SystemExit("spark-submit not found next to sys.executable nor on PATH")
    return found


def host_info() -> dict:
    info = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
    }
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_kib"] = int(f.readline().split()[1])
    except OSError:
        pass
    for mod in ("numpy", "pyarrow", "pyspark", "scipy"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            info[mod] = None
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60)
        info["java"] = (out.stderr or out.stdout).strip().splitlines()[0]
    except Exception:
        info["java"] = None
    return info


# --------------------------------------------------------------------------------------------
# running one whole process


def run_process(cmd: list[str], name: str, work_dir: str, env: dict, timeout: float,
                sample_interval: float) -> dict:
    """Run ``cmd`` (an argument list, no shell) with stdout/stderr to files under ``work_dir``;
    time the whole process and sample its tree's memory. Never raises for a failing command."""
    os.makedirs(work_dir, exist_ok=True)
    out_path = os.path.join(work_dir, f"{name}.stdout")
    err_path = os.path.join(work_dir, f"{name}.stderr")
    rec = {"name": name, "cmd": cmd, "stdout": out_path, "stderr": err_path,
           "loadavg_before": loadavg()}
    with open(out_path, "w") as out, open(err_path, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                cwd=work_dir, start_new_session=True)
        sampler = TreeSampler(proc.pid, interval=sample_interval).start()
        try:
            rc = proc.wait(timeout=timeout)
            rec["timed_out"] = False
        except subprocess.TimeoutExpired:
            rec["timed_out"] = True
            _kill_group(proc)
            rc = proc.wait()
        except KeyboardInterrupt:
            _kill_group(proc)
            proc.wait()
            sampler.stop()
            raise
        rec["wall_seconds"] = time.perf_counter() - t0
        rec["memory"] = sampler.stop()
    rec["returncode"] = rc
    rec["ok"] = rc == 0 and not rec["timed_out"]
    rec["loadavg_after"] = loadavg()
    with open(out_path, errors="replace") as f:
        rec["printed"] = parse_key_values(f.read())
    if not rec["ok"]:
        rec["stderr_tail"] = tail(err_path)
    return rec


def _kill_group(proc: subprocess.Popen) -> None:
    """End the process group we started (start_new_session=True made proc.pid its id)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------------------------
# reading what the runs left


def history_timing(history: list, mode: str = "auto") -> dict:
    """Per-iteration seconds (and gradient passes, if recorded) from our history.json.

    ``seconds`` may be each iteration's own duration or a running total; ``auto`` takes it for a
    running total when it never decreases over ≥ 3 records and ends ≥ 2× where it began.
    """
    recs = [r for r in history if isinstance(r, dict)]
    secs = [float(r["seconds"]) for r in recs if isinstance(r.get("seconds"), (int, float))]
    out = {"records": len(recs), "seconds_kind": None, "per_iteration": [], "total_seconds": None,
           "passes": None, "passes_source": None}
    if not secs:
        return out

    def looks_cumulative(values):
        return (len(values) >= 3 and all(b >= a for a, b in zip(values, values[1:]))
                and values[-1] >= 2 * values[0])

    cumulative = looks_cumulative(secs) if mode == "auto" else mode == "cumulative"
    per = [b - a for a, b in zip([0.0] + secs[:-1], secs)] if cumulative else secs
    out.update(seconds_kind="cumulative" if cumulative else "per-iteration", per_iteration=per,
               total_seconds=sum(per))
    out["passes_per_iteration"] = None
    for key in EVAL_COUNT_KEYS:
        counts = [r.get(key) for r in recs]
        if len(counts) == len(per) and all(isinstance(c, (int, float)) for c in counts):
            counts = [float(c) for c in counts]
            if cumulative:  # read like 'seconds'
                counts = [b - a for a, b in zip([0.0] + counts[:-1], counts)]
            if sum(counts) > 0:
                out.update(passes=sum(counts), passes_source=f"history key '{key}'",
                           passes_per_iteration=counts)
            break
    if out["passes"] is None:
        out.update(passes=float(len(per)), passes_source="assumed one gradient pass per record")
    return out


def ours_per_pass(timing: dict) -> dict:
    per = timing["per_iteration"]
    if not per:
        return {"per_pass_seconds": None, "first_iteration_seconds": None}
    counts = timing.get("passes_per_iteration")
    if counts:
        rates = [sec / n for sec, n in zip(per, counts) if n > 0]
        rest = rates[1:] if len(rates) > 1 else rates
        how = "median over iterations after the first of seconds / recorded gradient passes"
    else:
        rest = per[1:] if len(per) > 1 else per
        how = "median per-iteration seconds after the first (one pass per iteration assumed)"
    return {"per_pass_seconds": statistics.median(rest) if rest else None, "per_pass_how": how,
            "mean_per_pass_seconds": ratio(timing["total_seconds"], timing["passes"]),
            "first_iteration_seconds": per[0]}


class Evaluator:
    """J(W, b) and ‖∇J‖ in numpy over a data set, loaded lazily once (float64)."""

    def __init__(self, data_dir: str, manifest: dict, l2: float, l1: float = 0.0):
        self.data_dir, self.manifest, self.l2, self.l1 = data_dir, manifest, l2, l1
        self._xy = None

    def __call__(self, coef, intercept) -> dict:
        import numpy as np

        if self._xy is None:
            t0 = time.perf_counter()
            self._xy = make_data.load_numpy(self.data_dir, self.manifest, np.float64)
            log(f"loaded {self._xy[0].shape[0]} rows into numpy for J in {time.perf_counter() - t0:.1f}s")
        X, y = self._xy
        coef = np.asarray(coef, dtype=np.float64)
        intercept = np.asarray(intercept, dtype=np.float64)
        J, g_coef, g_int = solvers.reference_objective()(coef, intercept, X, y, l2=self.l2)
        J += self.l1 * float(np.abs(coef).sum())  # elastic-net workloads (grad_norm: the smooth part's)
        gnorm = float(np.sqrt(np.vdot(g_coef, g_coef) + np.vdot(g_int, g_int)))
        return {"objective": float(J), "grad_norm": gnorm}

    def release(self):
        self._xy = None


# --------------------------------------------------------------------------------------------
# the three kinds of Spark runs


class Bench:
    def __init__(self, args):
        self.a = args
        self.spark_submit = spark_submit_path()
        self.trainer = os.path.abspath(args.trainer)
        self.mllib_script = os.path.join(BENCH_DIR, "mllib_fit.py")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.work = os.path.abspath(os.path.join(args.work_dir, f"run-{stamp}-{os.getpid()}"))
        os.makedirs(self.work, exist_ok=True)
        self.env = dict(os.environ)
        self.env["PYSPARK_PYTHON"] = sys.executable
        self.env["PYSPARK_DRIVER_PYTHON"] = sys.executable
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        local_dir = os.path.join(self.work, "spark-local")
        os.makedirs(local_dir, exist_ok=True)
        # identical for ours and MLlib
        self.spark_args = [
            "--master", args.master,
            "--driver-memory", args.driver_memory,
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.ui.showConsoleProgress=false",
            "--conf", f"spark.local.dir={local_dir}",
            # the status store must keep every loss-evaluation job of a long MLlib fit
            "--conf", "spark.ui.retainedJobs=100000",
            "--conf", "spark.ui.retainedStages=100000",
        ]
        for kv in args.conf:
            self.spark_args += ["--conf", kv]
        self.failures: list[str] = []

    def trainer_exists(self) -> bool:
        return os.path.isfile(self.trainer)

    def _spark(self, script: str, script_args: list[str], name: str) -> dict:
        cmd = [self.spark_submit, *self.spark_args, script, *script_args]
        log(f"{name}: {' '.join(shown(c) for c in cmd[-len(script_args) - 1:])}")
        rec = run_process(cmd, name, self.work, self.env, self.a.timeout, self.a.sample_interval)
        state = "ok" if rec["ok"] else ("TIMED OUT" if rec["timed_out"] else f"FAILED rc={rec['returncode']}")
        log(f"{name}: {state} in {rec['wall_seconds']:.1f}s, peak RSS "
            f"{rec['memory']['peak_rss_bytes'] / 2**20:.0f} MiB (PSS {rec['memory']['peak_pss_bytes'] / 2**20:.0f} MiB)")
        if not rec["ok"]:
            self.failures.append(name)
            print(rec.get("stderr_tail", ""), file=sys.stderr)
        return rec

    def run_ours_lbfgs(self, data_dir, name, evaluator=None, max_iter=None, optimizer=None,
                       extra_args=()) -> dict:
        model_dir = os.path.join(self.work, name, "model")
        l1, l2 = enet_strengths(self.a)
        args = ["--input", data_dir, "--model-dir", model_dir, "--l2", repr(l2), "--overwrite", *extra_args]
        if l1:
            args += ["--l1", repr(l1)]
        optimizer = optimizer or self.a.optimizer
        if optimizer != "default":
            args += ["--optimizer", optimizer]
        # --tol is --optimizer's; the others of --optimizers run at their own default tol (the
        # solvers' tolerances measure different things: newton's is on the Newton decrement)
        tol = self.a.tol if optimizer == self.a.optimizer else None
        if not self.a.defaults:  # the "small" workload: each side at its own defaults
            args += ["--max-iter", str(max_iter or self.a.max_iter)] + (["--tol", repr(tol)] if tol is not None else [])
        if self.a.dtype:
            args += ["--dtype", self.a.dtype]
        rec = self._spark(self.trainer, args, name)
        rec["kind"] = "ours_lbfgs"
        rec["optimizer"], rec["tol"] = optimizer, None if self.a.defaults else tol
        rec["model_dir"] = model_dir
        if rec["ok"]:
            self._read_our_model(rec, model_dir, evaluator)
        rec["cached_bytes"] = rec["printed"].get("cached_bytes")
        return rec

    def _read_our_model(self, rec, model_dir, evaluator):
        from softmax_spark import load_model

        try:
            model = load_model(model_dir)
        except Exception as exc:
            rec["ok"] = False
            rec["error"] = f"load_model({model_dir}) failed: {exc}"
            self.failures.append(rec["name"])
            log(f"{rec['name']}: {rec['error']}")
            return
        history = list(model.history or [])
        timing = history_timing(history, self.a.ours_history_seconds)
        rec["iterations"] = len(history)
        rec["history_last"] = history[-1] if history else None
        rec["objective_reported"] = (history[-1] or {}).get("objective") if history else None
        rec["timing"] = {k: v for k, v in timing.items() if k not in ("per_iteration", "passes_per_iteration")}
        rec["timing"]["per_iteration_seconds"] = [round(s, 6) for s in timing["per_iteration"]]
        rec.update(ours_per_pass(timing))
        rec["fit_seconds"] = timing["total_seconds"]
        meta = model.metadata or {}
        data_summary = meta.get("data_summary") or {}
        rec["ingest_seconds"] = data_summary.get("ingest_seconds")
        rec["stop_reason"] = (meta.get("options") or {}).get("stop_reason")
        rec["solver"] = meta.get("solver")  # what --optimizer auto chose
        rec["data_summary"] = {k: v for k, v in data_summary.items()
                               if isinstance(v, (int, float, str, bool)) or v is None}
        if evaluator is not None:
            rec["numpy"] = evaluator(model.coef, model.intercept)

    def run_ours_sgd(self, data_dir, name, n_rows) -> dict:
        model_dir = os.path.join(self.work, name, "model")
        args = ["--input", data_dir, "--model-dir", model_dir, "--optimizer", "sgd",
                "--batch-fraction", repr(self.a.sgd_batch_fraction),
                "--max-iter", str(self.a.sgd_max_iter), "--l2", repr(self.a.l2), "--overwrite"]
        if self.a.dtype:
            args += ["--dtype", self.a.dtype]
        rec = self._spark(self.trainer, args, name)
        rec["kind"] = "ours_sgd"
        if not rec["ok"]:
            return rec
        from softmax_spark import load_model

        try:
            history = list(load_model(model_dir).history or [])
        except Exception as exc:
            rec["ok"] = False
            rec["error"] = f"load_model failed: {exc}"
            self.failures.append(name)
            return rec
        timing = history_timing(history, self.a.ours_history_seconds)
        rows = None
        for key in ROW_COUNT_KEYS:
            vals = [r.get(key) for r in history if isinstance(r, dict)]
            if vals and all(isinstance(v, (int, float)) for v in vals):
                rows, rec["rows_source"] = float(sum(vals)), f"history key '{key}'"
                break
        if rows is None:
            rps = [r.get("rows_per_second") for r in history if isinstance(r, dict)]
            if rps and all(isinstance(v, (int, float)) for v in rps) and len(rps) == len(timing["per_iteration"]):
                rows = float(sum(v * s for v, s in zip(rps, timing["per_iteration"])))
                rec["rows_source"] = "history 'rows_per_second' × 'seconds'"
        if rows is None:
            rows = self.a.sgd_batch_fraction * n_rows * len(timing["per_iteration"])
            rec["rows_source"] = "expected: batch fraction × rows × iterations"
        rec["iterations"] = len(history)
        rec["rows_processed"] = rows
        rec["fit_seconds"] = timing["total_seconds"]
        rest = timing["per_iteration"][1:] or timing["per_iteration"]
        rec["rows_per_second"] = ratio(rows, timing["total_seconds"])
        rec["rows_per_second_after_first"] = ratio(
            rows * len(rest) / max(len(timing["per_iteration"]), 1), sum(rest))
        rec["rows_per_second_whole_process"] = ratio(rows, rec["wall_seconds"])
        return rec

    def run_mllib(self, data_dir, name, evaluator=None, max_iter=None) -> dict:
        out_json = os.path.join(self.work, f"{name}.json")
        # MLlib's own defaults: tol 1e-6, maxIter 100
        tol, iters = (1e-6, 100) if self.a.defaults else (self.a.tol, max_iter or self.a.max_iter)
        # the model is saved, as our trainer saves its own: both processes train AND write a model
        args = ["--input", data_dir, "--out", out_json, "--reg-param", repr(2.0 * self.a.l2),
                "--elastic-net-param", repr(getattr(self.a, "elastic_net", 0.0)),
                "--tol", repr(tol), "--max-iter", str(iters), "--model-dir", os.path.join(self.work, name, "model")]
        rec = self._spark(self.mllib_script, args, name)
        rec["kind"] = "mllib"
        if not rec["ok"]:
            return rec
        with open(out_json) as f:
            res = json.load(f)
        coef, intercept = res.pop("coef"), res.pop("intercept")
        hist = res.pop("objective_history")
        rec["mllib"] = res
        rec["iterations"] = res["total_iterations"]
        rec["fit_seconds"] = res["fit_seconds"]
        rec["save_seconds"] = res.get("save_seconds")
        rec["seconds_per_iteration"] = res["seconds_per_iteration"]
        rec["loss_evals"] = res["loss_evals"]["count"]
        rec["per_eval_seconds"] = res["loss_evals"]["median_seconds_after_first"]
        rec["objective_reported"] = res["final_objective_mllib"]
        rec["objective_history_tail"] = hist[-5:]
        rec["cached_bytes"] = res["cached"]["measured_bytes"]
        if evaluator is not None:
            rec["numpy"] = evaluator(coef, intercept)
        return rec

    def run_numpy_bound(self, data_dir, name, dtypes) -> dict | None:
        out_json = os.path.join(self.work, f"{name}.json")
        cmd = [sys.executable, os.path.join(BENCH_DIR, "numpy_bound.py"), "--input", data_dir,
               "--out", out_json, "--dtypes", ",".join(dtypes), "--passes", str(self.a.numpy_passes)]
        if self.a.block_rows:
            cmd += ["--block-rows", str(self.a.block_rows)]
        log(f"{name}: numpy bound ({','.join(dtypes)}) on {shown(data_dir)}")
        rec = run_process(cmd, name, self.work, self.env, self.a.timeout, self.a.sample_interval)
        if not rec["ok"]:
            self.failures.append(name)
            print(rec.get("stderr_tail", ""), file=sys.stderr)
            return None
        with open(out_json) as f:
            res = json.load(f)
        for dtype, r in res["dtypes"].items():
            modes = ", ".join(f"{k} {v['median_seconds']:.4f}" for k, v in r.items() if isinstance(v, dict))
            log(f"{name}: {dtype}: bound {r['bound_seconds']:.4f} s/pass ({modes})")
        return res


# --------------------------------------------------------------------------------------------
# summaries


def summarise_runs(runs: list[dict], keys: list[str]) -> dict:
    ok = [r for r in runs if r.get("ok")]
    out = {"runs_ok": len(ok), "runs": len(runs)}
    for key in keys:
        out[key] = median([_get(r, key) for r in ok])
    return out


def _get(rec, dotted):
    cur = rec
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


COMMON_KEYS = ["wall_seconds", "fit_seconds", "iterations", "numpy.objective", "numpy.grad_norm",
               "objective_reported", "memory.peak_rss_bytes", "memory.peak_pss_bytes",
               "memory.peak_by_category.jvm.rss", "memory.peak_by_category.python_driver.rss",
               "memory.peak_by_category.python_workers.rss",
               "memory.peak_by_category.python_workers.pss", "cached_bytes"]


def agreement(pairs: list[tuple[dict, dict]], rtol: float, no_worse: bool = False) -> dict:
    """Final objectives of each (ours, MLlib) pair within ``rtol`` relative; with ``no_worse``
    (each side at its own defaults, which stop at different tolerances) ours must only be no
    higher than MLlib's (within ``rtol``)."""
    checks = []
    for ours, ml in pairs:
        jo, jm = _get(ours, "numpy.objective"), _get(ml, "numpy.objective")
        if jo is None or jm is None:
            continue
        rel = abs(jo - jm) / max(abs(jm), 1e-300)
        checks.append({"ours": ours["name"], "mllib": ml["name"], "J_ours": jo, "J_mllib": jm,
                       "rel_diff": rel, "ok": (jo <= jm * (1 + rtol)) if no_worse else rel <= rtol,
                       "lower": "ours" if jo < jm else ("mllib" if jm < jo else "equal")})
    if not checks:
        return {"compared": False, "ok": None, "rtol": rtol, "checks": []}
    worst = max(c["rel_diff"] for c in checks)
    return {"compared": True, "ok": all(c["ok"] for c in checks), "rtol": rtol, "max_rel_diff": worst,
            "no_worse": no_worse, "checks": checks}


def fmt(v, unit=""):
    if v is None:
        return "—"
    if unit == "MiB":
        return f"{v / 2**20:,.0f} MiB"
    if unit == "x":
        return f"{v:.2f}×"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        return f"{int(v):,}"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.1f}"
        if abs(v) >= 0.01:
            return f"{v:.4g}"
        return f"{v:.3e}"
    return str(v)


def markdown(result: dict) -> str:
    m = result["meta"]
    d = result["dataset"]["params"]
    s = result["summary"]
    ours, ml, rat = s.get("ours", {}), s.get("mllib", {}), s.get("ratios", {})
    lines = [
        f"# softmax_spark benchmark — {m['finished']}",
        "",
        f"Data: {d['rows']:,} rows × {d['features']} features × {d['classes']} classes (seed {d['seed']}, "
        f"{result['dataset']['total_bytes'] / 2**20:,.0f} MiB Parquet). Spark: `{m['args']['master']}`, "
        f"driver memory {m['args']['driver_memory']}. l2 = {m['args']['l2']} (MLlib regParam = "
        f"{2 * m['args']['l2']:g}), tol = {m['args']['tol']}, max iter = {m['args']['max_iter']}. "
        f"Repeats: {m['args']['repeats']} (medians shown). Load average at start/end: "
        f"{m['host']['loadavg_start'][0]:.2f} / {m['loadavg_end']:.2f}."
        + (f" MLlib's BLAS: {result['mllib_blas']}." if result.get("mllib_blas") else ""),
        "",
    ]
    agr = result["objective_agreement"]
    if agr["compared"] and not agr["ok"]:
        lines += [f"**!!! OBJECTIVE MISMATCH: final J differs by {agr['max_rel_diff']:.3e} relative "
                  f"(tolerance {agr['rtol']:g}) !!!**", ""]
    elif agr["compared"]:
        lines += [f"Final objectives agree: max relative difference {agr['max_rel_diff']:.3e} "
                  f"(tolerance {agr['rtol']:g}).", ""]
    else:
        lines += ["Final objectives: not compared (a side did not run).", ""]
    stops = s.get("stop_reasons", {})
    if stops:
        lines += ["Why each side stopped: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in stops.items()) + ".", ""]
    if result.get("notes"):
        lines += [f"- {n}" for n in result["notes"]] + [""]
    lines += ["| metric | ours | MLlib | ours / MLlib |", "| --- | ---: | ---: | ---: |"]
    rows = [
        ("whole process, s", "wall_seconds", ""),
        ("fit, s (ours: Σ iteration seconds; MLlib: LogisticRegression.fit)", "fit_seconds", ""),
        ("ingest, s (ours: read + cache before the first iteration)", "ingest_seconds", ""),
        ("iterations", "iterations", ""),
        ("final J (numpy, our definition)", "numpy.objective", ""),
        ("‖∇J‖ at the solution (numpy)", "numpy.grad_norm", ""),
        ("final objective as reported by the run", "objective_reported", ""),
        ("peak RSS, process tree", "memory.peak_rss_bytes", "MiB"),
        ("peak PSS, process tree", "memory.peak_pss_bytes", "MiB"),
        ("peak RSS, JVM", "memory.peak_by_category.jvm.rss", "MiB"),
        ("peak RSS, Python driver", "memory.peak_by_category.python_driver.rss", "MiB"),
        ("peak PSS, Python workers", "memory.peak_by_category.python_workers.pss", "MiB"),
        ("cached training data", "cached_bytes", "MiB"),
    ]
    for label, key, unit in rows:
        if key in ("numpy.objective", "objective_reported"):  # all the digits: these are compared
            o_v, m_v = ours.get(key), ml.get(key)
            lines.append(f"| {label} | {'—' if o_v is None else f'{o_v:.12g}'} | "
                         f"{'—' if m_v is None else f'{m_v:.12g}'} | — |")
            continue
        lines.append(f"| {label} | {fmt(ours.get(key), unit)} | {fmt(ml.get(key), unit)} | "
                     f"{fmt(ratio(ours.get(key), ml.get(key)), 'x')} |")
    lines += [
        f"| s per gradient pass (ours) vs s per iteration (MLlib: fit / totalIterations) | "
        f"{fmt(ours.get('per_pass_seconds'))} | {fmt(ml.get('seconds_per_iteration'))} | "
        f"{fmt(rat.get('ours_pass_per_mllib_iteration'), 'x')} |",
        f"| s per gradient pass (MLlib: median loss-evaluation job after the first) | "
        f"{fmt(ours.get('per_pass_seconds'))} | {fmt(ml.get('per_eval_seconds'))} | "
        f"{fmt(rat.get('ours_pass_per_mllib_eval'), 'x')} |",
        f"| gradient passes (MLlib: loss-evaluation jobs) | {fmt(ours.get('timing.passes'))} | "
        f"{fmt(ml.get('loss_evals'))} | |",
        "",
    ]
    by_opt = s.get("ours_by_optimizer")
    if by_opt:  # --optimizers: a row per optimizer (the table above is the first one's)
        lines += ["## Ours per optimizer (`--optimizers`)", "",
                  "| optimizer | whole process, s | × MLlib | fit, s | iterations | passes | s per pass | "
                  "final J (numpy) | ‖∇J‖ |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for opt, o in list(by_opt.items()) + [("MLlib", ml)]:
            j = o.get("numpy.objective")
            chose = [x for x in o.get("solvers", []) if x != opt]
            tol = f" (tol {o['tol']})" if "tol" in o else ""
            lines.append(f"| {opt}{' → ' + ', '.join(chose) if chose else ''}{tol} | {fmt(o.get('wall_seconds'))} | {fmt(ratio(o.get('wall_seconds'), ml.get('wall_seconds')), 'x')} | "
                         f"{fmt(o.get('fit_seconds'))} | {fmt(o.get('iterations'))} | "
                         f"{fmt(o.get('timing.passes') if opt != 'MLlib' else o.get('loss_evals'))} | "
                         f"{fmt(o.get('per_pass_seconds') if opt != 'MLlib' else o.get('per_eval_seconds'))} | "
                         f"{'—' if j is None else f'{j:.12g}'} | {fmt(o.get('numpy.grad_norm'))} |")
        lines.append("")
    nb = result.get("numpy_bound")
    if nb:
        what = ("scipy.sparse CSR bound (one gradient pass over the CSR matrix in memory, no Spark)"
                if nb.get("format") == "csr" else "numpy bound (one gradient pass over the data in memory, no Spark)")
        lines += [f"## {what}", "",
                  "| dtype | " + " | ".join(k for k, v in next(iter(nb["dtypes"].values())).items()
                                            if isinstance(v, dict)) + " | bound | ours per pass / bound |",
                  "| --- |" + " ---: |" * (len([1 for v in next(iter(nb["dtypes"].values())).values()
                                                  if isinstance(v, dict)]) + 2)]
        for dtype, r in nb["dtypes"].items():
            cells = [fmt(v["median_seconds"]) for v in r.values() if isinstance(v, dict)]
            lines.append(f"| {dtype} | " + " | ".join(cells) +
                         f" | {fmt(r['bound_seconds'])} | {fmt(ratio(ours.get('per_pass_seconds'), r['bound_seconds']), 'x')} |")
        lines.append("")
    sgd = s.get("ours_sgd")
    if sgd and sgd.get("runs_ok"):
        lines += ["## SGD throughput (ours, batch fraction "
                  f"{m['args']['sgd_batch_fraction']}, {m['args']['sgd_max_iter']} iterations)", "",
                  f"- rows/s over the iterations: {fmt(sgd.get('rows_per_second'))}; after the first "
                  f"iteration: {fmt(sgd.get('rows_per_second_after_first'))}; whole process: "
                  f"{fmt(sgd.get('rows_per_second_whole_process'))}", ""]
    sc = result.get("scaling")
    if sc:
        lines += [f"## Scaling (max iter {m['args']['scaling_max_iter']}; time per pass against rows)", "",
                  "MLlib's s/iteration here spreads its setup (summariser pass, caching pass) over few "
                  "iterations; its s/loss eval is the like-for-like number.", "",
                  "| rows | ours s/pass | MLlib s/iteration | MLlib s/loss eval | numpy bound s/pass (float64) |",
                  "| ---: | ---: | ---: | ---: | ---: |"]
        for row in sc:
            lines.append(f"| {row['rows']:,} | {fmt(row.get('ours_per_pass_seconds'))} | "
                         f"{fmt(row.get('mllib_seconds_per_iteration'))} | {fmt(row.get('mllib_per_eval_seconds'))} | "
                         f"{fmt(row.get('numpy_bound_seconds'))} |")
        lines.append("")
        lin = result.get("scaling_linearity")
        if lin:
            lines += [f"Ours per pass at {lin['rows']:,} rows / at {lin['base_rows']:,}: {lin['ratio']:.2f} "
                      f"(linear goal ≤ {lin['goal']:.2f}: {'met' if lin['ok'] else 'NOT met'}).", ""]
    sp = result.get("scaling_partitions")
    if sp:
        lines += [f"## Scaling against partitions ({sp[0]['rows']:,} rows, ours, `--num-partitions`)", "",
                  "| partitions | ours s/pass | ours wall s | ingest s |", "| ---: | ---: | ---: | ---: |"]
        for row in sp:
            lines.append(f"| {row['partitions']} | {fmt(row.get('ours_per_pass_seconds'))} | "
                         f"{fmt(row.get('ours_wall_seconds'))} | {fmt(row.get('ingest_seconds'))} |")
        lines.append("")
    lines += [f"Raw numbers: `{shown(result['paths']['json'])}`; logs: `{shown(result['paths']['work'])}`.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="softmax_spark vs MLlib benchmark (see bench/README.md)",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--rows", type=int, default=1_000_000, help="rows of the main data set")
    g.add_argument("--features", type=int, default=64, help="features per row")
    g.add_argument("--classes", type=int, default=10, help="number of classes")
    g.add_argument("--seed", type=int, default=42, help="data generator seed")
    g.add_argument("--kind", choices=make_data.KINDS, default="gaussian", help="data generator (bench/make_data.py)")
    g.add_argument("--nnz-per-row", type=int, default=40, help="sparse kind: mean non-zeros per row")
    g.add_argument("--data-dtype", choices=make_data.DTYPES, default="float64",
                   help="feature values written as float64 (array<double>) or float32 (array<float>)")
    g.add_argument("--data-root", default=os.path.join(BENCH_DIR, "data"), help="where data sets live")
    g = p.add_argument_group("what to run")
    g.add_argument("--workloads", default="dense",
                   help=f"comma list of {', '.join(WORKLOADS)} (issue 14's table); with several, each "
                        "writes <name>-<workload>.json/.md and <name>.md holds the table")
    g.add_argument("--repeats", type=int, default=3, help="ours/MLlib pairs, alternating who goes first")
    g.add_argument("--only", choices=["ours", "mllib"], default=None, help="run one side only")
    g.add_argument("--skip-scaling", action="store_true", help="skip the time-per-pass vs rows run")
    g.add_argument("--scaling-rows", default="250000,500000,1000000,2000000", help="row counts of the scaling run")
    g.add_argument("--scaling-partitions", default="",
                   help="comma list of --num-partitions for a time-per-pass vs partitions sweep (ours only; "
                        "the scaling workload: 2,4,8,16,32,64)")
    g.add_argument("--scaling-partition-rows", default="1000000", help="rows of the partitions sweep")
    g.add_argument("--scaling-max-iter", type=int, default=20,
                   help="iterations per scaling run (enough for a steady time per pass)")
    g.add_argument("--skip-sgd", action="store_true", help="skip the SGD throughput run")
    g.add_argument("--skip-numpy", action="store_true", help="skip the numpy bound")
    g.add_argument("--numpy-dtypes", default="float64,float32", help="dtypes of the numpy bound")
    g.add_argument("--numpy-passes", type=int, default=5, help="timed passes per numpy mode (after a warm-up)")
    g.add_argument("--block-rows", type=int, default=None,
                   help="rows per kernel call in the numpy bound (None: the trainer's CHUNK_ROWS, CSR: CSR_CHUNK_ROWS)")
    g = p.add_argument_group("training")
    g.add_argument("--l2", type=float, default=1e-4, help="our λ; MLlib gets regParam = 2λ")
    g.add_argument("--tol", type=float, default=1e-6, help="both sides' tol")
    g.add_argument("--max-iter", type=int, default=1000, help="both sides' iteration limit")
    g.add_argument("--optimizer", default="lbfgs",
                   help="our --optimizer (auto, lbfgs, newton, ...; 'default': not passed)")
    g.add_argument("--optimizers", default=None,
                   help="dense workload: comma list of our optimizers (e.g. lbfgs,auto), each run beside MLlib "
                        "every repeat, a table row each (default: just --optimizer)")
    g.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="--dtype for our trainer (None: not passed, the trainer's default)")
    g.add_argument("--sgd-batch-fraction", type=float, default=0.1, help="SGD run's --batch-fraction")
    g.add_argument("--sgd-max-iter", type=int, default=20, help="SGD run's --max-iter")
    g.add_argument("--trainer", default=os.path.join(REPO, "jobs", "train.py"), help="our trainer script")
    g.add_argument("--ours-history-seconds", choices=["auto", "per-iteration", "cumulative"],
                   default="per-iteration",
                   help="how to read history.json 'seconds' (jobs/train.py records each iteration's own duration)")
    solvers.add_arguments(p)
    g = p.add_argument_group("spark")
    g.add_argument("--master", default="local[2]", help="spark-submit --master (both sides)")
    g.add_argument("--driver-memory", default="8g", help="spark-submit --driver-memory (both sides)")
    g.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="extra --conf for both sides (repeatable)")
    g.add_argument("--h2o-python", default=None, help="anchors workload: a Python that imports h2o (default: this one)")
    g.add_argument("--h2o-path", default=None, help="anchors workload: extra PYTHONPATH where h2o is installed")
    g.add_argument("--timeout", type=float, default=7200.0, help="seconds per process")
    g.add_argument("--sample-interval", type=float, default=0.2, help="memory sampling period, s")
    g = p.add_argument_group("output")
    g.add_argument("--agree-rtol", type=float, default=1e-6, help="max relative difference of the final J")
    g.add_argument("--results-dir", default=os.path.join(BENCH_DIR, "results", "raw"),
                   help="raw per-run files (git-ignored); the curated tables go to --results-md")
    g.add_argument("--results-md", default=os.path.join(BENCH_DIR, "RESULTS.md"),
                   help="rewrite this file's sections of the workloads run (bench/results_md.py); '' = do not")
    g.add_argument("--name", default="latest", help="results file stem: <results-dir>/<name>.json/.md")
    g.add_argument("--work-dir", default=os.path.join(BENCH_DIR, "work"), help="logs and model dirs (a run-* dir per run)")
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error("--repeats must be >= 1")
    a.workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    unknown = [w for w in a.workloads if w not in WORKLOADS]
    if unknown:
        p.error(f"--workloads: unknown {', '.join(unknown)}; expected some of {', '.join(WORKLOADS)}")
    solvers.check_arguments(p, a)
    a.optimizer_list = [o.strip() for o in (a.optimizers or "").split(",") if o.strip()]
    given = sys.argv[1:] if argv is None else list(argv)
    flag = lambda k: "--" + k.replace("_", "-")  # noqa: E731
    a.explicit = {k for k in SHAPE_KEYS if any(t == flag(k) or t.startswith(flag(k) + "=") for t in given)}
    a.command = " ".join(["bench/run.py", *given])
    a.defaults, a.scaling_only, a.workload = False, False, "dense"
    return a


def publish_results(result: dict, text: str, json_path: str, md_path: str) -> None:
    """Write a workload's JSON and markdown (each via a temp file and a rename, so a killed run
    leaves the previous results whole) and print the markdown."""
    with open(json_path + ".tmp", "w") as f:
        json.dump(result, f, indent=1, default=str)
    os.replace(json_path + ".tmp", json_path)
    with open(md_path + ".tmp", "w") as f:
        f.write(text)
    os.replace(md_path + ".tmp", md_path)
    print()
    print(text)


def run_workload(a, bench) -> tuple[dict, int]:
    """One workload's runs (``a`` already holds its shape and options): (result, exit status)."""
    started = _dt.datetime.now().isoformat(timespec="seconds")
    host = host_info()
    log(f"work dir {bench.work}; load average {host['loadavg_start'][0]:.2f}")
    if host["loadavg_start"][0] > 1.0:
        log(f"WARNING: load average {host['loadavg_start'][0]:.2f} > 1: other work is running, timings will be noisy")
    notes = []
    failures_before = len(bench.failures)

    want_ours = a.only in (None, "ours")
    want_mllib = a.only in (None, "mllib")
    trainer_missing = want_ours and not bench.trainer_exists()
    if trainer_missing:
        msg = (f"our trainer {shown(bench.trainer)} does not exist (yet): the 'ours' runs "
               f"(L-BFGS, SGD, scaling) are skipped. Use --only mllib to run the baseline alone.")
        loud([msg])
        notes.append(msg)
        want_ours = False

    data_dir, manifest = make_data.ensure_dataset(a.rows, a.features, a.classes, a.seed, a.data_root,
                                                  log=log, kind=a.kind, nnz_per_row=a.nnz_per_row,
                                                  dtype=a.data_dtype)
    l1, l2 = enet_strengths(a)
    evaluator = Evaluator(data_dir, manifest, l2, l1)

    runs, pairs = [], []
    # one run of ours per --optimizers entry beside MLlib; the order rotates by one each repeat
    sides = [f"ours:{opt}" for opt in a.optimizers] + ["mllib"]
    for r in range(0 if a.scaling_only else a.repeats):
        order = sides[r % len(sides):] + sides[:r % len(sides)]
        got = {}
        for side in order:
            if side.startswith("ours:") and want_ours:
                opt = side[len("ours:"):]
                run_name = f"ours-lbfgs-r{r}" if len(a.optimizers) == 1 else f"ours-{opt}-r{r}"
                got[side] = bench.run_ours_lbfgs(data_dir, run_name, evaluator, optimizer=opt)
                runs.append(got[side])
            elif side == "mllib" and want_mllib:
                got["mllib"] = bench.run_mllib(data_dir, f"mllib-r{r}", evaluator)
                runs.append(got["mllib"])
        pairs += [(got[side], got["mllib"]) for side in sides[:-1] if side in got and "mllib" in got]
        for side in sides:
            rec = got.get(side)
            if rec and rec.get("ok") and rec.get("numpy"):
                log(f"{rec['name']}: J = {rec['numpy']['objective']!r}, ‖∇J‖ = {rec['numpy']['grad_norm']:.3e}, "
                    f"iterations {rec.get('iterations')}")
        if want_ours and not a.skip_sgd:
            runs.append(bench.run_ours_sgd(data_dir, f"ours-sgd-r{r}", a.rows))
    evaluator.release()

    numpy_bound = None
    if not a.skip_numpy and not a.scaling_only:
        numpy_bound = bench.run_numpy_bound(data_dir, "numpy-bound",
                                            [d for d in a.numpy_dtypes.split(",") if d])

    scaling = []
    if not a.skip_scaling:
        for n in [int(float(x)) for x in a.scaling_rows.split(",") if x.strip()]:
            sdir, _ = make_data.ensure_dataset(n, a.features, a.classes, a.seed, a.data_root, log=log,
                                               kind=a.kind, nnz_per_row=a.nnz_per_row, dtype=a.data_dtype)
            row = {"rows": n}
            if want_ours:
                rec = bench.run_ours_lbfgs(sdir, f"scale-ours-{n}", None, a.scaling_max_iter)
                runs.append(rec)
                row["ours_per_pass_seconds"] = rec.get("per_pass_seconds")
                row["ours_wall_seconds"] = rec.get("wall_seconds")
            if want_mllib:
                rec = bench.run_mllib(sdir, f"scale-mllib-{n}", None, a.scaling_max_iter)
                runs.append(rec)
                row["mllib_seconds_per_iteration"] = rec.get("seconds_per_iteration")
                row["mllib_per_eval_seconds"] = rec.get("per_eval_seconds")
                row["mllib_wall_seconds"] = rec.get("wall_seconds")
            if not a.skip_numpy:
                nb = bench.run_numpy_bound(sdir, f"scale-numpy-{n}", ["float64"])
                row["numpy_bound_seconds"] = nb["dtypes"]["float64"]["bound_seconds"] if nb else None
            scaling.append(row)
    scaling_partitions = []
    parts = [int(x) for x in (a.scaling_partitions or "").split(",") if x.strip()]
    if parts and not a.skip_scaling and want_ours:
        # time per pass against partitions at a fixed row count: ours only (--num-partitions)
        n = int(float(a.scaling_partition_rows))
        sdir, _ = make_data.ensure_dataset(n, a.features, a.classes, a.seed, a.data_root, log=log,
                                           kind=a.kind, nnz_per_row=a.nnz_per_row)
        for k in parts:
            rec = bench.run_ours_lbfgs(sdir, f"scale-ours-{n}-p{k}", None, a.scaling_max_iter,
                                       extra_args=["--num-partitions", str(k)])
            runs.append(rec)
            scaling_partitions.append({"rows": n, "partitions": k, "ours_per_pass_seconds": rec.get("per_pass_seconds"),
                                       "ours_wall_seconds": rec.get("wall_seconds"),
                                       "ingest_seconds": rec.get("ingest_seconds")})
    rows_linearity = scaling_linearity(scaling)

    # ---- summary
    main_runs = [r for r in runs if not r["name"].startswith("scale-")]
    all_ours_runs = [r for r in main_runs if r.get("kind") == "ours_lbfgs"]
    ours_runs = [r for r in all_ours_runs if r.get("optimizer") == a.optimizers[0]]  # "ours": the first
    ml_runs = [r for r in main_runs if r.get("kind") == "mllib"]
    sgd_runs = [r for r in main_runs if r.get("kind") == "ours_sgd"]
    summary = {}
    if ours_runs:
        summary["ours"] = summarise_runs(ours_runs, COMMON_KEYS + ["per_pass_seconds", "first_iteration_seconds",
                                                                   "timing.passes", "ingest_seconds"])
    if len(a.optimizers) > 1:
        summary["ours_by_optimizer"] = {
            opt: summarise_runs([r for r in all_ours_runs if r.get("optimizer") == opt],
                                COMMON_KEYS + ["per_pass_seconds", "timing.passes", "ingest_seconds"])
            for opt in a.optimizers}
        for opt, o in summary["ours_by_optimizer"].items():  # what auto chose, at which tol
            o["solvers"] = sorted({str(r.get("solver")) for r in all_ours_runs if r.get("optimizer") == opt and r.get("ok")})
            o["tol"] = a.tol if opt == a.optimizer else "default"
    if ml_runs:
        summary["mllib"] = summarise_runs(ml_runs, COMMON_KEYS + ["seconds_per_iteration", "per_eval_seconds",
                                                                  "loss_evals", "mllib.loss_evals.first_seconds"])
    if sgd_runs:
        summary["ours_sgd"] = summarise_runs(sgd_runs, ["wall_seconds", "fit_seconds", "rows_processed",
                                                        "rows_per_second", "rows_per_second_after_first",
                                                        "rows_per_second_whole_process",
                                                        "memory.peak_rss_bytes", "memory.peak_pss_bytes"])
    stop_reasons = {}
    if ours_runs:
        stop_reasons["ours"] = sorted({str(r.get("stop_reason")) for r in all_ours_runs if r.get("ok")})
    if ml_runs:
        stop_reasons["MLlib"] = sorted({
            (f"maxIter ({a.max_iter}) reached" if r["iterations"] >= a.max_iter else
             "converged (Breeze: |J − max of its last 20 J| ≤ tol·|J₀|, or ‖∇J‖ < tol·J in its standardised coordinates)")
            for r in ml_runs if r.get("ok")})
    summary["stop_reasons"] = stop_reasons
    o, m = summary.get("ours", {}), summary.get("mllib", {})
    summary["ratios"] = {
        "wall_seconds": ratio(o.get("wall_seconds"), m.get("wall_seconds")),
        "fit_seconds": ratio(o.get("fit_seconds"), m.get("fit_seconds")),
        "ours_pass_per_mllib_iteration": ratio(o.get("per_pass_seconds"), m.get("seconds_per_iteration")),
        "ours_pass_per_mllib_eval": ratio(o.get("per_pass_seconds"), m.get("per_eval_seconds")),
        "peak_rss": ratio(o.get("memory.peak_rss_bytes"), m.get("memory.peak_rss_bytes")),
        "peak_pss": ratio(o.get("memory.peak_pss_bytes"), m.get("memory.peak_pss_bytes")),
        "cached_bytes": ratio(o.get("cached_bytes"), m.get("cached_bytes")),
    }
    if numpy_bound:
        for dtype, r in numpy_bound["dtypes"].items():
            summary["ratios"][f"ours_pass_per_numpy_bound_{dtype}"] = ratio(o.get("per_pass_seconds"),
                                                                            r["bound_seconds"])
            summary["ratios"][f"mllib_eval_per_numpy_bound_{dtype}"] = ratio(m.get("per_eval_seconds"),
                                                                             r["bound_seconds"])
    if ours_runs and all(r.get("ok") for r in ours_runs) and not any(r.get("cached_bytes") for r in ours_runs):
        notes.append("our trainer printed no 'cached_bytes=<n>' line: its cached size is unknown")

    agr = agreement(pairs, 1e-9 if a.defaults else a.agree_rtol, no_worse=a.defaults)
    mllib_blas = next((r["mllib"].get("blas") for r in ml_runs if r.get("ok")), None)
    if mllib_blas and not mllib_blas.get("native"):
        notes.append(f"MLlib ran with the Java BLAS fallback ({mllib_blas.get('java')}); no native libblas.so.3 "
                     "was found, so its level-3 products are not native")
    if any(r.get("loadavg_before", 0) > 1.0 for r in runs):
        notes.append("the load average exceeded 1.0 before at least one run: other work was running, "
                     "timings are noisy (per-run load averages are in the JSON)")

    os.makedirs(a.results_dir, exist_ok=True)
    json_path = os.path.join(a.results_dir, f"{a.name}.json")
    md_path = os.path.join(a.results_dir, f"{a.name}.md")
    result = {
        "meta": {"started": started, "finished": _dt.datetime.now().isoformat(timespec="seconds"),
                 "args": vars(a), "host": host, "loadavg_end": loadavg(),
                 "spark_submit": bench.spark_submit, "spark_args": bench.spark_args,
                 "trainer": bench.trainer, "trainer_missing": trainer_missing, "workload": a.workload,
                 "command": a.command},
        "dataset": manifest,
        "summary": summary,
        "objective_agreement": agr,
        "numpy_bound": numpy_bound,
        "scaling": scaling,
        "scaling_partitions": scaling_partitions,
        "scaling_linearity": rows_linearity,
        "mllib_blas": mllib_blas,
        "notes": notes,
        "failures": bench.failures,
        "runs": runs,
        "paths": {"json": json_path, "md": md_path, "work": bench.work},
    }
    publish_results(result, markdown(result), json_path, md_path)

    if agr["compared"] and not agr["ok"]:
        loud([f"OBJECTIVE MISMATCH: ours and MLlib's final J differ by {agr['max_rel_diff']:.3e} relative "
              f"(tolerance {a.agree_rtol:g})"] +
             [f"{c['ours']}: J={c['J_ours']!r}  vs  {c['mllib']}: J={c['J_mllib']!r}  (rel {c['rel_diff']:.3e}, "
              f"lower: {c['lower']})" for c in agr["checks"] if not c["ok"]])
        return result, EXIT_MISMATCH
    if failures_before != len(bench.failures):
        log(f"FAILED runs: {', '.join(bench.failures)} (logs in {bench.work})")
        return result, EXIT_FAILED
    if trainer_missing:
        return result, EXIT_NO_TRAINER
    return result, EXIT_OK



# --------------------------------------------------------------------------------------------
# workloads (issue 14): name → the data and the options that differ from the command line's

WORKLOADS = {
    # today's: dense 1M × 64 × 10 (--rows/--features/--classes apply), with its scaling run
    "dense": {},
    # issue 11's: λ = 1e-5 (MLlib regParam 2e-5)
    "sparse": {"rows": 500_000, "features": 131_072, "classes": 20, "kind": "sparse", "l2": 1e-5,
               "skip_scaling": True},  # its bound: scipy.sparse CSR in process (bench/numpy_bound.py)
    "wide": {"rows": 60_000, "features": 784, "classes": 10, "kind": "pixels", "skip_scaling": True},
    "manyclasses": {"rows": 200_000, "features": 128, "classes": 200, "skip_scaling": True},
    # the latency a user feels: both sides at their defaults, l2 1e-3 (MLlib regParam 2e-3)
    "small": {"rows": 2_000, "features": 20, "classes": 5, "kind": "badly_scaled", "l2": 1e-3,
              "defaults": True, "optimizer": "default", "skip_scaling": True, "skip_sgd": True},
    # float32 input (array<float>): our cache stays float32 (--dtype auto); MLlib reads doubles
    "dense32": {"data_dtype": "float32", "skip_scaling": True},
    # time per pass against rows on the dense workload (no main runs)
    # 4M × 64 float64 is 2 GiB of data: one data set at a time, no in-process copy (no bound, no J)
    "scaling": {"scaling_only": True, "skip_sgd": True, "skip_numpy": True,
                "scaling_rows": "250000,500000,1000000,2000000,4000000", "scaling_partitions": "2,4,8,16,32,64"},
    # issue 26: elastic net at MLlib's defaults (regParam = 2·l2, elasticNetParam α; ours --l1 regParam·α,
    # --l2 regParam·(1−α)/2 at our CLI's defaults); J compared includes the L1 term (Evaluator)
    "enet-dense": {"elastic_net": 0.5, "defaults": True, "optimizer": "default", "skip_scaling": True,
                   "skip_sgd": True},
    "enet-sparse": {"rows": 500_000, "features": 131_072, "classes": 20, "kind": "sparse", "l2": 1e-5,
                    "elastic_net": 1.0, "defaults": True, "optimizer": "default", "skip_scaling": True,
                    "skip_sgd": True},
    # issue 13: each solver on hard small data sets against the exact optimum (bench/solvers.py)
    "solvers": {"l2": 1e-4},
    # issue 28: what a user would run instead (scikit-learn in one process) on the same data and J (bench/anchors.py)
    "anchors": {"skip_scaling": True, "skip_sgd": True},
    # our trainer on a classic session vs Spark Connect, fixed iterations (bench/connect.py)
    "connect": {"rows": 200_000, "max_iter": 20, "optimizer": "lbfgs", "skip_scaling": True},
}
# an explicit flag on the command line beats a workload's setting
SHAPE_KEYS = ("rows", "features", "classes", "scaling_rows", "scaling_partitions")


def enet_strengths(a) -> tuple[float, float]:
    """(our λ₁, λ₂) for MLlib's regParam = 2·a.l2 and elasticNetParam = a.elastic_net (0: (0, a.l2))."""
    alpha = float(getattr(a, "elastic_net", 0.0) or 0.0)
    reg = 2.0 * a.l2
    return reg * alpha, reg * (1.0 - alpha) / 2.0


def workload_args(a, name: str):
    """``a`` with workload ``name``'s settings; an explicit --rows/--features/--classes on the
    command line overrides a workload's shape (e.g. a reduced dense run)."""
    wa = argparse.Namespace(**vars(a))
    for key, value in WORKLOADS[name].items():
        if key in SHAPE_KEYS and key in a.explicit:
            continue
        setattr(wa, key, value)
    wa.workload = name
    wa.optimizers = a.optimizer_list if name == "dense" and a.optimizer_list else [wa.optimizer]
    if len(a.workloads) > 1:
        wa.name = f"{a.name}-{name}"
    return wa


def table(results: list[dict]) -> str:
    """One line per workload: the issue-14 table."""
    lines = ["| workload | data | ours wall s | MLlib wall s | ratio | ours passes | ours s/pass | "
             "MLlib s/iter | numpy bound s/pass | cached bytes ours / MLlib | peak RSS ours / MLlib (MiB) | "
             "J agree | load avg |", "|" + "---|" * 13]
    for r in results:
        d = r["dataset"]["params"]
        s = r["summary"]
        m = s.get("mllib", {})
        nb = ((r.get("numpy_bound") or {}).get("dtypes") or {}).get("float64", {}).get("bound_seconds")
        agr = r.get("objective_agreement") or {}
        rss = lambda x: fmt(x / 2**20 if isinstance(x, (int, float)) else None)  # noqa: E731
        loads = [run.get("loadavg_before") for run in r.get("runs", []) if run.get("loadavg_before") is not None]
        # a row per --optimizers entry (dense), else one
        for opt, o in list((s.get("ours_by_optimizer") or {}).items()) or [(None, s.get("ours", {}))]:
            lines.append(
                f"| {r['meta']['workload']}{f' ({opt})' if opt else ''} | {d['rows']:,} × {d['features']:,} × {d['classes']} {d.get('kind', 'gaussian')}{' float32' if d.get('dtype') == 'float32' else ''} | "
                f"{fmt(o.get('wall_seconds'))} | {fmt(m.get('wall_seconds'))} | {fmt(ratio(o.get('wall_seconds'), m.get('wall_seconds')))} | "
                f"{fmt(o.get('timing.passes'))} | {fmt(o.get('per_pass_seconds'))} | {fmt(m.get('seconds_per_iteration'))} | "
                f"{fmt(nb)}{_bound_ratio(o.get('per_pass_seconds'), nb)} | "
                f"{fmt(o.get('cached_bytes'))} / {fmt(m.get('cached_bytes'))} | "
                f"{rss(o.get('memory.peak_rss_bytes'))} / {rss(m.get('memory.peak_rss_bytes'))} | "
                f"{'ok' if agr.get('ok') else ('NO' if agr.get('compared') else '–')} "
                f"{fmt(agr.get('max_rel_diff'))} | {fmt(statistics.median(loads)) if loads else '–'} |")
    return "\n".join(lines) + "\n"


def _bound_ratio(per_pass, bound) -> str:
    r = ratio(per_pass, bound)
    return f" (ours {fmt(r, 'x')})" if r is not None else ""


def scaling_linearity(scaling: list[dict]) -> dict | None:
    """Our per-pass time at the largest row count n over that at n' (the largest count ≤ n/4,
    else the smallest), against the linear goal 1.1·n/n' (issue 14: 4M / 1M ≤ 4.4)."""
    got = {r["rows"]: r.get("ours_per_pass_seconds") for r in scaling if r.get("ours_per_pass_seconds")}
    if len(got) < 2:
        return None
    n = max(got)
    lower = [m for m in got if m <= n / 4] or [min(got)]
    m = max(lower)
    value, goal = got[n] / got[m], 1.1 * n / m
    return {"rows": n, "base_rows": m, "ratio": value, "goal": goal, "ok": value <= goal}


def main(argv=None) -> int:
    a = parse_args(argv)
    bench = Bench(a)
    results, status = [], EXIT_OK
    for name in a.workloads:
        bench.a = workload_args(a, name)  # the runs read their options from bench.a
        if name == "connect":  # classic vs Spark Connect: its own runs and report
            from connect import run_connect

            result, code = run_connect(bench.a, bench)
        elif name == "anchors":  # scikit-learn beside ours (bench/anchors.py)
            from anchors import run_anchors

            result, code = run_anchors(bench.a, bench)
        else:
            result, code = (solvers.run_workload if name == "solvers" else run_workload)(bench.a, bench)
        results.append(result)
        status = status if code == EXIT_OK else code
    if a.results_md and results:  # the curated page: one section per workload, with its commit and load
        import results_md

        print(f"rewrote {results_md.update(results, path=a.results_md)}")
    if len(results) > 1:
        text = f"# softmax_spark benchmark table — {_dt.datetime.now().isoformat(timespec='seconds')}\n\n" \
               f"Command: `{a.command}`\n\n" + table([r for r in results if r["meta"]["workload"] != "solvers"]) + \
               "".join(f"\n{r['markdown']}" for r in results if r["meta"]["workload"] == "solvers")
        path = os.path.join(a.results_dir, f"{a.name}.md")
        with open(path, "w") as f:
            f.write(text)
        print(text)
    return status

if __name__ == "__main__":
    sys.exit(main())
