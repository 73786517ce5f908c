"""The ``anchors`` workload of bench/run.py: what a user would run instead, on the same data and objective.

    .venv/bin/python bench/run.py --workloads anchors [--rows 200000] [--repeats 3]

Per repeat, each a whole process timed by ``run.run_process`` (memory sampled as for the other
workloads), in rotating order:

- ours: ``spark-submit jobs/train.py`` at ``--optimizer`` (``run.Bench.run_ours_lbfgs``);
- scikit-learn ``LogisticRegression`` in one process, reading the same Parquet
  (``bench/sklearn_anchor.py``): ``lbfgs`` and ``newton-cholesky`` (the latter skipped, and said
  so, when its (C·(D+1))² Hessian is over ``--newton-max-params``), C = 1/(2λN), tol 1e-10.

J (mean log-loss + λ‖W‖²_F) of every solution is computed in numpy on the same rows
(``run.Evaluator``), beside the exact optimum's J* (our numpy Newton at tol 1e-20 in this process,
``tests/test_newton_spark.exact_optimum``; skipped above ``EXACT_MAX_CELLS`` rows × features).
Pure L2 only: an ``--elastic-net`` run is refused (scikit-learn's lbfgs/newton-cholesky have no L1).

- optionally H2O GLM (``bench/h2o_anchor.py``: multinomial, α = 0, IRLSM, its own local H2O JVM
  started inside the process), when ``h2o`` is importable by ``--h2o-python`` (default: this
  Python): ``pip install h2o`` (~300 MB with its h2o.jar) runs under Java 17. Sparkling Water
  has no Spark 4 build, so H2O runs beside Spark, not in it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import statistics
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)

EXACT_MAX_CELLS = 64_000_000  # rows × features for the in-process exact optimum (≈ 0.5 GB of float64)
SKLEARN_SOLVERS = ("lbfgs", "newton-cholesky")


def _h2o_python(a) -> str | None:
    """The Python that runs bench/h2o_anchor.py when ``h2o`` imports there, else None."""
    import subprocess

    python = getattr(a, "h2o_python", None) or sys.executable
    env = {**os.environ, **({"PYTHONPATH": a.h2o_path} if getattr(a, "h2o_path", None) else {})}
    ok = subprocess.run([python, "-c", "import h2o"], env=env, capture_output=True).returncode == 0
    return python if ok else None


def _sklearn(bench, a, data_dir, l2, solver, name):
    from run import run_process

    out = os.path.join(bench.work, f"{name}.json")
    if solver == "h2o":
        cmd = [_h2o_python(a), os.path.join(BENCH_DIR, "h2o_anchor.py"), "--input", data_dir, "--l2", repr(l2),
               "--out", out]
        path = os.pathsep.join(p for p in (REPO, getattr(a, "h2o_path", None)) if p)
    else:
        cmd = [sys.executable, os.path.join(BENCH_DIR, "sklearn_anchor.py"), "--input", data_dir, "--l2", repr(l2),
               "--solver", solver, "--out", out]
        path = REPO
    env = {**os.environ, "PYTHONPATH": path}
    rec = run_process(cmd, name, bench.work, env, a.timeout, a.sample_interval)
    rec["kind"] = f"sklearn_{solver}" if solver != "h2o" else "h2o"
    if rec["ok"] and os.path.exists(out):
        with open(out) as f:
            rec["anchor"] = json.load(f)
    return rec


def _exact_objective(data_dir, manifest, l2, evaluator):
    import numpy as np

    import make_data
    from solvers import _test_generators

    if manifest["params"]["rows"] * manifest["params"]["features"] > EXACT_MAX_CELLS:
        return None
    X, y = make_data.load_numpy(data_dir, manifest, np.float64)
    coef, intercept = _test_generators().exact_optimum(X, y, l2=l2)
    return evaluator(coef, intercept)["objective"]


def run_anchors(a, bench):
    """The anchors workload (module docstring): (result, exit status) as ``run.run_workload``."""
    import make_data
    from run import EXIT_FAILED, EXIT_OK, Evaluator, enet_strengths, host_info, loadavg, log, publish_results

    started = _dt.datetime.now().isoformat(timespec="seconds")
    host = host_info()
    l1, l2 = enet_strengths(a)
    if l1:
        raise SystemExit("bench anchors: pure L2 only (scikit-learn's lbfgs/newton-cholesky have no L1 part)")
    data_dir, manifest = make_data.ensure_dataset(a.rows, a.features, a.classes, a.seed, a.data_root, log=log,
                                                  kind=a.kind, nnz_per_row=a.nnz_per_row, dtype=a.data_dtype)
    evaluator = Evaluator(data_dir, manifest, l2)
    failures_before = len(bench.failures)
    runs = []
    sides = ["ours"] + [f"sklearn_{s}" for s in SKLEARN_SOLVERS]
    if _h2o_python(a):
        sides.append("sklearn_h2o")  # run by _sklearn with bench/h2o_anchor.py
    else:
        log("h2o not importable (pip install h2o; or --h2o-python / --h2o-path): H2O GLM not run")
    for r in range(a.repeats):
        for side in sides[r % len(sides):] + sides[:r % len(sides)]:
            if side == "ours":
                rec = bench.run_ours_lbfgs(data_dir, f"anchors-ours-r{r}", evaluator)
                rec["objective"] = (rec.get("numpy") or {}).get("objective")
            else:
                solver = side[len("sklearn_"):]
                rec = _sklearn(bench, a, data_dir, l2, solver, f"anchors-{side}-r{r}")
                rec["objective"] = (rec.get("anchor") or {}).get("objective")
                if not rec["ok"]:
                    bench.failures.append(rec["name"])
            rec["side"] = side
            runs.append(rec)
            log(f"{rec['name']}: {rec.get('wall_seconds', float('nan')):.1f} s, J = {rec.get('objective')}")
    log("the exact optimum (numpy Newton, tol 1e-20) ...")
    exact = _exact_objective(data_dir, manifest, l2, evaluator)
    summary = {}
    for side in sides:
        mine = [r for r in runs if r["side"] == side and r.get("ok")]
        skipped = next((r["anchor"]["skipped"] for r in mine if (r.get("anchor") or {}).get("skipped")), None)
        med = lambda key: statistics.median(v for v in (r.get(key) for r in mine) if v is not None) \
            if any(r.get(key) is not None for r in mine) else None  # noqa: E731
        fit = [((r.get("anchor") or {}).get("fit_seconds") if side != "ours" else r.get("fit_seconds")) for r in mine]
        fit = [v for v in fit if v is not None]
        objective = med("objective")
        summary[side] = {"wall_seconds": med("wall_seconds"), "fit_seconds": statistics.median(fit) if fit else None,
                         "objective": objective, "runs": len(mine), "skipped": skipped,
                         "gap": (objective - exact) / abs(exact) if objective is not None and exact else None}
    os.makedirs(a.results_dir, exist_ok=True)
    json_path = os.path.join(a.results_dir, f"{a.name}-anchors.json")
    md_path = os.path.join(a.results_dir, f"{a.name}-anchors.md")
    result = {"meta": {"started": started, "finished": _dt.datetime.now().isoformat(timespec="seconds"),
                       "args": vars(a), "host": host, "loadavg_end": loadavg(), "workload": a.workload,
                       "command": a.command},
              "dataset": manifest, "summary": summary, "exact_objective": exact, "runs": runs,
              "failures": bench.failures[failures_before:]}
    result["markdown"] = markdown(result)
    publish_results(result, result["markdown"], json_path, md_path)
    return result, EXIT_FAILED if failures_before != len(bench.failures) else EXIT_OK


def markdown(result: dict) -> str:
    """The anchors table (whole process, fit, J and its gap to J*)."""
    d, s, exact = result["dataset"]["params"], result["summary"], result.get("exact_objective")
    f = lambda v, spec=".3g": "—" if v is None else format(v, spec)  # noqa: E731
    names = {"ours": "ours (jobs/train.py, spark-submit)", "sklearn_lbfgs": "scikit-learn lbfgs (one process)",
             "sklearn_newton-cholesky": "scikit-learn newton-cholesky (one process)",
             "sklearn_h2o": "H2O GLM IRLSM (one process, its own H2O JVM; whole process includes h2o.init)"}
    ours = (s.get("ours") or {}).get("wall_seconds")
    lines = [f"## Anchors — {d['rows']:,} × {d['features']} × {d['classes']}, λ = {result['meta']['args']['l2']:g}",
             "", "| | whole process s | fit s | J | (J − J*)/|J*| | whole process / ours |",
             "|---|---:|---:|---:|---:|---:|"]
    for side, v in s.items():
        if v.get("skipped"):
            lines.append(f"| {names.get(side, side)} | skipped: {v['skipped']} | | | | |")
            continue
        rel = f"{v['wall_seconds'] / ours:.2f}×" if v.get("wall_seconds") and ours else "—"
        lines.append(f"| {names.get(side, side)} | {f(v.get('wall_seconds'))} | {f(v.get('fit_seconds'))} | "
                     f"{f(v.get('objective'), '.12g')} | {f(v.get('gap'), '.2e')} | {rel} |")
    lines += ["", f"J* (numpy Newton at tol 1e-20 on the same rows): {f(exact, '.12g')}. Medians over "
              f"{max((v.get('runs') or 0) for v in s.values())} repeats."
              + ("" if "sklearn_h2o" in s else " H2O GLM not run: `h2o` not importable (bench/anchors.py).")]
    return "\n".join(lines) + "\n"
