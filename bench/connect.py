"""The ``connect`` workload of bench/run.py: our trainer on a classic session against Spark Connect.

On the dense synthetic data (``make_data`` gaussian; the workload's 200k × 64 × 10, ``--rows``
etc. apply) one Spark Connect server is started (``softmax_spark.spark.connect_server``, with the
same ``--master``, ``--driver-memory`` and ``--conf`` as the classic runs, and
``spark.default.parallelism`` set to the classic session's default so both ingest into the same
number of partitions), then ``--repeats`` times, alternating who goes first:

- classic: ``spark-submit --master … jobs/train.py --optimizer lbfgs --max-iter N …``;
- Connect: ``spark-submit --remote sc://127.0.0.1:PORT jobs/train.py`` with the same flags
  (``connect_backend``: ``mapInArrow`` passes, the payload inside each plan, the driver merges).

Each run's time per pass comes from its model's history timings, as run.py reads ours (median
over iterations after the first); its wall time is the whole spark-submit process. The Connect
server is started before and stopped after all runs (always, also on failure or Ctrl-C): its
start-up is not in any run's wall time, and its memory is not in the Connect runs' process-tree
figures (those are the client's). Ingest differs by construction: classic reads the Parquet
row groups with pyarrow in the tasks, Connect takes the rows from Spark through ``mapInArrow``.
Same data, same solver, same iterations: the two models must agree (max |Δcoef| reported).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re

import make_data
from run import (EXIT_FAILED, EXIT_OK, COMMON_KEYS, fmt, host_info, log, loadavg, publish_results, ratio, shown,
                 summarise_runs)

PER_RUN_KEYS = COMMON_KEYS + ["per_pass_seconds", "first_iteration_seconds", "timing.passes", "ingest_seconds"]


def _parallelism(master: str) -> int:
    """The classic session's ``defaultParallelism`` for a ``local[k]`` / ``local[*]`` master
    (the cores); 2 for anything else (pass ``--conf spark.default.parallelism=…`` then)."""
    m = re.fullmatch(r"local\[(\d+|\*)(?:,\s*\d+)?\]", master.strip())
    if m is None:
        return 2 if master.strip() != "local" else 1
    return (os.cpu_count() or 1) if m.group(1) == "*" else int(m.group(1))


def _server_args(bench) -> list[str]:
    args = list(bench.spark_args)
    if not any(str(x).startswith("spark.default.parallelism=") for x in args):
        args += ["--conf", f"spark.default.parallelism={_parallelism(bench.a.master)}"]
    return args


def _run_remote(bench, url: str, data_dir: str, name: str) -> dict:
    """``bench.run_ours_lbfgs`` with ``--remote url`` in place of the classic spark-submit
    arguments (the server holds the master, memory and confs)."""
    saved = bench.spark_args
    bench.spark_args = ["--remote", url]
    try:
        rec = bench.run_ours_lbfgs(data_dir, name)
    finally:
        bench.spark_args = saved
    rec["kind"] = "ours_connect"
    return rec


def _coef_diff(classic: dict, connect: dict) -> float | None:
    """max |Δ| over coef and intercept of the two runs' models (None when either failed)."""
    import numpy as np

    from softmax_spark import load_model

    if not (classic.get("ok") and connect.get("ok")):
        return None
    a, b = load_model(classic["model_dir"]), load_model(connect["model_dir"])
    return float(max(np.max(np.abs(a.coef - b.coef)), np.max(np.abs(a.intercept - b.intercept))))


def run_connect(a, bench) -> tuple[dict, int]:
    """The workload (module docstring): (result, exit status) as ``run.run_workload`` returns."""
    from softmax_spark.spark.connect_server import ConnectServer

    started = _dt.datetime.now().isoformat(timespec="seconds")
    host = host_info()
    log(f"work dir {bench.work}; load average {host['loadavg_start'][0]:.2f}")
    failures_before = len(bench.failures)
    notes = ["Connect runs: the client's spark-submit process only (the server JVM and its Python workers "
             "run outside its process tree; server start-up is excluded from every wall time)",
             "ingest differs by construction: classic reads Parquet row groups with pyarrow in the tasks, "
             "Connect takes the rows from Spark (mapInArrow)"]
    data_dir, manifest = make_data.ensure_dataset(a.rows, a.features, a.classes, a.seed, a.data_root,
                                                  log=log, kind=a.kind, nnz_per_row=a.nnz_per_row)
    runs, pairs = [], []
    log("starting a Spark Connect server")
    server = ConnectServer(os.path.join(bench.work, "connect-server"), spark_args=_server_args(bench))
    try:
        log(f"Spark Connect server at {server.url}")
        for r in range(a.repeats):
            got = {}
            for side in (("classic", "connect") if r % 2 == 0 else ("connect", "classic")):
                if side == "classic":
                    got[side] = bench.run_ours_lbfgs(data_dir, f"classic-r{r}")
                else:
                    got[side] = _run_remote(bench, server.url, data_dir, f"connect-r{r}")
                runs.append(got[side])
            pairs.append({"repeat": r, "max_abs_coef_diff": _coef_diff(got["classic"], got["connect"])})
    finally:
        server.stop()
        log("Spark Connect server stopped")

    classic = summarise_runs([r for r in runs if r["kind"] == "ours_lbfgs"], PER_RUN_KEYS)
    connect = summarise_runs([r for r in runs if r["kind"] == "ours_connect"], PER_RUN_KEYS)
    ratios = {key: ratio(connect.get(key), classic.get(key))
              for key in ("per_pass_seconds", "wall_seconds", "fit_seconds", "ingest_seconds")}
    diffs = [p["max_abs_coef_diff"] for p in pairs if p["max_abs_coef_diff"] is not None]
    summary = {"ours": classic, "classic": classic, "connect": connect, "ratios": ratios,
               "max_abs_coef_diff": max(diffs) if diffs else None}
    if any(r.get("loadavg_before", 0) > 1.0 for r in runs):
        notes.append("the load average exceeded 1.0 before at least one run: timings are noisy")

    os.makedirs(a.results_dir, exist_ok=True)
    json_path = os.path.join(a.results_dir, f"{a.name}.json")
    md_path = os.path.join(a.results_dir, f"{a.name}.md")
    result = {
        "meta": {"started": started, "finished": _dt.datetime.now().isoformat(timespec="seconds"),
                 "args": vars(a), "host": host, "loadavg_end": loadavg(), "spark_submit": bench.spark_submit,
                 "spark_args": bench.spark_args, "server_args": _server_args(bench), "trainer": bench.trainer,
                 "workload": a.workload, "command": a.command},
        "dataset": manifest, "summary": summary, "pairs": pairs, "notes": notes,
        "failures": bench.failures[failures_before:], "runs": runs,
        "paths": {"json": json_path, "md": md_path, "work": bench.work},
    }
    publish_results(result, markdown(result), json_path, md_path)
    if failures_before != len(bench.failures):
        log(f"FAILED runs: {', '.join(bench.failures[failures_before:])} (logs in {bench.work})")
        return result, EXIT_FAILED
    return result, EXIT_OK


def markdown(result: dict) -> str:
    m, d, s = result["meta"], result["dataset"]["params"], result["summary"]
    c, r, q = s["classic"], s["connect"], s["ratios"]
    mib = lambda x: fmt(x / 2**20 if isinstance(x, (int, float)) else None)  # noqa: E731
    lines = [
        f"# softmax_spark benchmark — classic vs Spark Connect — {m['finished']}", "",
        f"Command: `{m['command']}`", "",
        f"Data: {d['rows']:,} × {d['features']} × {d['classes']} {d.get('kind', 'gaussian')}; our trainer, "
        f"`--optimizer {m['args']['optimizer']} --max-iter {m['args']['max_iter']}`, {m['args']['repeats']} "
        f"repeat(s) alternating who goes first; medians. Classic: `{' '.join(m['spark_args'][:4])}`; "
        "Connect: `spark-submit --remote sc://127.0.0.1:PORT` to a server started with the same arguments.", "",
        "| | classic | Connect | Connect / classic |", "|---|---|---|---|",
        f"| time per pass, s | {fmt(c.get('per_pass_seconds'))} | {fmt(r.get('per_pass_seconds'))} | "
        f"{fmt(q.get('per_pass_seconds'))} |",
        f"| whole wall time, s | {fmt(c.get('wall_seconds'))} | {fmt(r.get('wall_seconds'))} | "
        f"{fmt(q.get('wall_seconds'))} |",
        f"| fit (iterations), s | {fmt(c.get('fit_seconds'))} | {fmt(r.get('fit_seconds'))} | "
        f"{fmt(q.get('fit_seconds'))} |",
        f"| ingest, s | {fmt(c.get('ingest_seconds'))} | {fmt(r.get('ingest_seconds'))} | "
        f"{fmt(q.get('ingest_seconds'))} |",
        f"| iterations | {fmt(c.get('iterations'))} | {fmt(r.get('iterations'))} | |",
        f"| first iteration, s | {fmt(c.get('first_iteration_seconds'))} | "
        f"{fmt(r.get('first_iteration_seconds'))} | |",
        f"| peak RSS of the spark-submit tree, MiB | {mib(c.get('memory.peak_rss_bytes'))} | "
        f"{mib(r.get('memory.peak_rss_bytes'))} (client only) | |",
        f"| runs ok | {c['runs_ok']}/{c['runs']} | {r['runs_ok']}/{r['runs']} | |", "",
        f"Same model on both: max |Δcoef| = {fmt(s.get('max_abs_coef_diff'))}.", "",
    ]
    if result["notes"]:
        lines += ["Notes:", ""] + [f"- {n}" for n in result["notes"]] + [""]
    if result["failures"]:
        lines += [f"FAILED: {', '.join(result['failures'])}", ""]
    lines += [f"Raw numbers: `{shown(result['paths']['json'])}`; logs: `{shown(result['paths']['work'])}`.", ""]
    return "\n".join(lines)
