"""The ``solvers`` workload (issue 13): each of our solvers and MLlib, on hard small data sets,
against the exact optimum.

    .venv/bin/python bench/run.py --workloads solvers                       # 9 data sets, 3 repeats
    .venv/bin/python bench/run.py --workloads solvers --repeats 1 --datasets iris,wine   # a smoke run

Two roles in one file:

- imported by ``bench/run.py``: ``add_arguments`` (its flags), ``run_workload`` (one spark-submit of
  this file with the benchmark's Spark settings, then ``<name>-solvers.json`` and the markdown);
- run by spark-submit (``main``): ONE SparkSession for everything. Per data set: a fixed seeded
  stratified train/test split (75/25); the exact optimum of J = mean log-loss + λ‖W‖²_F on the train
  split, in-process, no Spark (``problem.NumpyProblem`` + ``solvers.newton.Newton`` at tol 1e-20,
  as tests/test_newton_spark.py computes it), checked against scikit-learn's newton-cholesky at tol
  1e-12; the train split as a cached DataFrame; then ``--repeats`` rounds, each fitting every
  solver once (the order rotated by one each round, so no solver always goes first):

  - ours: ``softmax_spark.SoftmaxTrainer(optimizer=<auto|newton|newton-cg|lbfgs>, l2=λ)`` at
    every other default (tol, max_iter 1000), i.e. the training entry point ``jobs/train.py`` uses;
    fit wall time includes the ingest, iterations from the history, distributed passes from the
    metadata (``passes``: every gradient, Hessian or Hessian-vector pass);
  - MLlib: ``LogisticRegression(family="multinomial", regParam=2λ, elasticNetParam=0,
    standardization=False, tol=1e-6)`` at ``maxIter=1000`` (``mllib``: not cut at 100) and at its
    default ``maxIter=100`` (``mllib-100``); iterations = ``summary.totalIterations``, passes = its
    loss evaluations (the jobs of the fit whose stage is ``treeAggregate at RDDLossFunction``,
    counted through the status tracker and a job group per fit).

  Recorded per fit: wall seconds of ``fit``, iterations, passes, max |Δp| of the test-set
  probabilities against the exact optimum's, and the relative objective gap (J − J*)/|J*| on the
  train split (J computed in numpy with ``objective_and_gradient`` of tests/core_helpers.py). Medians
  over repeats for the times; the other figures are deterministic up to summation order.

The synthetic data sets are the generators behind tests/test_newton_spark.py (issue 13's table
rebuilt): raw scales 1e-2 … 1e4 with an 80 % class, correlated badly scaled 2300 × 19 × 7, integer
bands 1500 × 36 × 6, 3000 × 16 × 26, plus a nearly separable set; then scikit-learn's digits, wine,
iris and breast_cancer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)

OURS = ("auto", "newton", "newton-cg", "lbfgs")
MLLIB = {"mllib": 1000, "mllib-100": 100}  # name → maxIter (tol 1e-6 both)
SOLVERS = OURS + tuple(MLLIB)
MLLIB_TOL = 1e-6
TEST_FRACTION = 0.25
TARGET_DP, TARGET_PASSES, TARGET_CD = 1e-6, 50, 4096  # issue 13's targets


def _tests_on_path() -> None:
    tests_dir = os.path.join(REPO, "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)


def _test_generators():
    """The synthetic generators of tests/test_newton_spark.py (one definition of the data)."""
    _tests_on_path()
    import test_newton_spark as t

    return t


def reference_objective():
    """``objective_and_gradient`` of tests/core_helpers.py: J and ∇J in numpy, the reference
    the tests compare the library with (one definition)."""
    _tests_on_path()
    from core_helpers import objective_and_gradient

    return objective_and_gradient


def datasets() -> dict:
    """name → zero-argument loader returning (X float64 (n, D), y int (n,) in 0..C−1)."""
    from sklearn import datasets as sk

    t = _test_generators()
    return {
        "scaled_80pct_5c": lambda: t.hard_synthetic(2000, 12, 5, 0),
        "scaled_corr_7c": lambda: t.hard_synthetic(2300, 19, 7, 1, majority=0.0),
        "bands_6c": t.integer_bands,
        "letters_26c": lambda: t.hard_synthetic(3000, 16, 26, 4, majority=0.0, flip=0.05),
        # nearly separable: labels are the argmax of linear logits, 0.2 % redrawn
        "near_separable_4c": lambda: t.hard_synthetic(2000, 10, 4, 6, majority=0.0, flip=0.002),
        "digits": lambda: sk.load_digits(return_X_y=True),
        "wine": lambda: sk.load_wine(return_X_y=True),
        "iris": lambda: sk.load_iris(return_X_y=True),
        "breast_cancer": lambda: sk.load_breast_cancer(return_X_y=True),
    }


DATASET_NAMES = ("scaled_80pct_5c", "scaled_corr_7c", "bands_6c", "letters_26c", "near_separable_4c",
                 "digits", "wine", "iris", "breast_cancer")


def log(msg: str) -> None:
    print(f"[solvers {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def split(X, y, seed: int):
    """Stratified train/test split, seeded: (X_train, y_train, X_test, y_test)."""
    from sklearn.model_selection import train_test_split

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=TEST_FRACTION, random_state=seed, stratify=y)
    return Xtr, ytr, Xte, yte


def proba(coef, intercept, X):
    import numpy as np

    from softmax_spark.core.loss import softmax

    return softmax(np.asarray(X, dtype=np.float64) @ np.asarray(coef, dtype=np.float64).T
                   + np.asarray(intercept, dtype=np.float64))


def objective(coef, intercept, X, y, l2: float) -> float:
    return float(reference_objective()(coef, intercept, X, y, l2=l2)[0])


def reference(Xtr, ytr, Xte, l2: float) -> dict:
    """The exact optimum on the train split (our Newton at tol 1e-20, numpy, no Spark) and its
    check against scikit-learn's newton-cholesky at tol 1e-12 (C = 1/(2λn), 1/(λn) for 2 classes:
    tests/helpers.py's ``sklearn_C``)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    coef, intercept = _test_generators().exact_optimum(Xtr, ytr, l2=l2)
    newton_seconds = time.perf_counter() - t0
    n_classes = int(ytr.max()) + 1
    C = 1.0 / (l2 * len(ytr)) if n_classes == 2 else 1.0 / (2.0 * l2 * len(ytr))
    t0 = time.perf_counter()
    sk = LogisticRegression(C=C, tol=1e-12, max_iter=10000, solver="newton-cholesky").fit(Xtr, ytr)
    sk_seconds = time.perf_counter() - t0
    j_star = objective(coef, intercept, Xtr, ytr, l2)
    if n_classes == 2:  # one vector v = w₁ − w₀ in scikit-learn; ours at the optimum is w₁ = −w₀ = v/2
        sk_coef = np.vstack([-sk.coef_ / 2, sk.coef_ / 2])
        sk_int = np.array([-sk.intercept_[0] / 2, sk.intercept_[0] / 2])
    else:
        sk_coef, sk_int = sk.coef_, sk.intercept_
    j_sk = objective(sk_coef, sk_int, Xtr, ytr, l2)
    return {
        "coef": coef, "intercept": intercept, "objective": j_star,
        "newton_seconds": newton_seconds,
        "sklearn": {"solver": "newton-cholesky", "tol": 1e-12, "C": C, "n_iter": int(np.max(sk.n_iter_)),
                    "seconds": sk_seconds, "objective": j_sk, "rel_objective_diff": (j_sk - j_star) / abs(j_star),
                    "max_abs_dp_test": float(np.max(np.abs(sk.predict_proba(Xte) - proba(coef, intercept, Xte)))),
                    "max_abs_dp_train": float(np.max(np.abs(sk.predict_proba(Xtr) - proba(coef, intercept, Xtr))))},
    }


# --------------------------------------------------------------------------------------------
# the Spark side (run by spark-submit)


def make_df(spark, X, y):
    """The train split as a cached DataFrame, 2 partitions: ``features`` array<double> (ours),
    ``vec`` the same as an ml Vector (MLlib, converted in the JVM), ``label`` int."""
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    rows = [(x.tolist(), int(label)) for x, label in zip(X, y)]
    df = spark.createDataFrame(rows, schema="features array<double>, label int").repartition(2)
    df = df.withColumn("vec", array_to_vector(F.col("features"))).cache()
    df.count()
    return df


class FitTimeout(Exception):
    """A fit cancelled by ``job_group``'s timer."""


@contextlib.contextmanager
def job_group(sc, group: str, timeout: float | None):
    """Run the block's Spark jobs in job group ``group``; after ``timeout`` seconds (None or 0:
    never) cancel the group, and the block's exception becomes ``FitTimeout``. A fit that runs
    away (thousands of passes) so costs at most ``timeout``, not the whole workload's budget."""
    fired, done = threading.Event(), threading.Event()

    def cancel():  # again every second: a job the fit submits after the first cancel goes too
        fired.set()
        while not done.is_set():
            sc.cancelJobGroup(group)
            done.wait(1.0)

    timer = threading.Timer(timeout, cancel) if timeout else None
    sc.setJobGroup(group, f"bench solvers {group}")
    if timer:
        timer.daemon = True
        timer.start()
    try:
        yield
    except Exception as exc:
        if fired.is_set():
            raise FitTimeout(f"cancelled after {timeout:g} s") from exc
        raise
    finally:
        done.set()
        if timer:
            timer.cancel()
        sc.setLocalProperty("spark.jobGroup.id", None)


def fit_ours(df, optimizer: str, l2: float, **options):
    """(wall seconds of fit, coef, intercept, record) for our estimator at its defaults."""
    from softmax_spark import SoftmaxTrainer

    est = SoftmaxTrainer(optimizer=optimizer, l2=l2, write_mllib=False, **options)
    t0 = time.perf_counter()
    model = est.fit(df)
    seconds = time.perf_counter() - t0
    meta = model.metadata or {}
    return seconds, model.coef, model.intercept, {
        "iterations": len(model.history or []), "passes": meta.get("passes"), "solver": meta.get("solver"),
        "solver_reason": meta.get("solver_reason"), "stop_reason": meta.get("stop_reason"),
        "ingest_seconds": (meta.get("data_summary") or {}).get("ingest_seconds"),
    }


def _loss_evals(sc, group: str) -> int:
    """MLlib's loss evaluations in job group ``group``: jobs with a stage named like
    ``treeAggregate at RDDLossFunction.scala`` (one per loss + gradient evaluation)."""
    tracker = sc.statusTracker()
    count = 0
    for job_id in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job_id)
        if info is None:
            continue
        for stage_id in info.stageIds:
            stage = tracker.getStageInfo(stage_id)
            if stage is not None and "RDDLossFunction" in (stage.name or ""):
                count += 1
                break
    return count


def fit_mllib(spark, df, l2: float, max_iter: int, group: str):
    """(wall seconds of fit, coef, intercept, record); run inside ``job_group(sc, group, …)``."""
    from pyspark.ml.classification import LogisticRegression

    sc = spark.sparkContext
    lr = LogisticRegression(featuresCol="vec", labelCol="label", family="multinomial", regParam=2.0 * l2,
                            elasticNetParam=0.0, standardization=False, tol=MLLIB_TOL, maxIter=max_iter,
                            fitIntercept=True)
    t0 = time.perf_counter()
    model = lr.fit(df)
    seconds = time.perf_counter() - t0
    iterations = int(model.summary.totalIterations)
    return seconds, model.coefficientMatrix.toArray(), model.interceptVector.toArray(), {
        "iterations": iterations, "passes": _loss_evals(sc, group), "solver": "mllib-lbfgs",
        "stop_reason": f"maxIter ({max_iter})" if iterations >= max_iter else "converged (tol 1e-6)",
        "maxIter": max_iter, "tol": MLLIB_TOL,
    }


def run_dataset(spark, name: str, loader, l2: float, repeats: int, solvers: list[str], seed: int,
                fit_timeout: float | None = None, repeat_max_seconds: float | None = None) -> dict:
    """One data set: reference, cached DataFrame, ``repeats`` rotated rounds of every solver. A
    solver whose fit took more than ``repeat_max_seconds`` is not fitted again (one long fit
    already averages the per-job jitter that repeats are for); one past ``fit_timeout`` is
    cancelled and reported as timed out."""
    import numpy as np

    X, y = loader()
    X = np.asarray(X, dtype=np.float64)
    y = np.unique(np.asarray(y), return_inverse=True)[1]
    Xtr, ytr, Xte, yte = split(X, y, seed)
    C, D = int(y.max()) + 1, X.shape[1]
    ref = reference(Xtr, ytr, Xte, l2)
    p_star = proba(ref["coef"], ref["intercept"], Xte)
    sk = ref["sklearn"]
    log(f"{name}: {len(ytr)} train / {len(yte)} test × {D} × {C}; J* = {ref['objective']!r} "
        f"(Newton {ref['newton_seconds']:.2f}s); scikit-learn newton-cholesky: max|Δp| {sk['max_abs_dp_test']:.1e}, "
        f"rel ΔJ {sk['rel_objective_diff']:.1e}")
    df = make_df(spark, Xtr, ytr)
    runs = {s: [] for s in solvers}
    timed_out = {}  # solver → message: not fitted again on this data set
    try:
        for r in range(repeats):
            order = solvers[r % len(solvers):] + solvers[:r % len(solvers)]
            for solver in order:
                if solver in timed_out or (r > 0 and repeat_max_seconds and runs[solver]
                                           and runs[solver][0]["fit_seconds"] > repeat_max_seconds):
                    continue
                group = f"{name}-{solver}-r{r}"
                try:
                    with job_group(spark.sparkContext, group, fit_timeout):
                        if solver in MLLIB:
                            secs, coef, intercept, rec = fit_mllib(spark, df, l2, MLLIB[solver], group)
                        else:
                            secs, coef, intercept, rec = fit_ours(df, solver, l2)
                except FitTimeout as exc:
                    timed_out[solver] = f"timed out ({exc}; --fit-timeout) in repeat {r}"
                    log(f"{name} r{r} {solver:10s} TIMED OUT: {exc}")
                    continue
                coef, intercept = np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)
                j = objective(coef, intercept, Xtr, ytr, l2)
                rec.update(repeat=r, fit_seconds=secs, objective=j,
                           rel_objective_gap=(j - ref["objective"]) / abs(ref["objective"]),
                           max_abs_dp_test=float(np.max(np.abs(proba(coef, intercept, Xte) - p_star))))
                runs[solver].append(rec)
                log(f"{name} r{r} {solver:10s} {secs:7.2f}s iterations {rec['iterations']:4d} passes "
                    f"{rec['passes']} max|Δp| {rec['max_abs_dp_test']:.1e} gap {rec['rel_objective_gap']:.1e} "
                    f"({rec.get('solver')}; {rec['stop_reason']})")
    finally:
        df.unpersist()
    summary = {solver: {"timed_out": msg} for solver, msg in timed_out.items()}
    for solver, recs in runs.items():
        if not recs:
            continue
        last = recs[-1]
        summary[solver] = {
            "fit_seconds": statistics.median(r["fit_seconds"] for r in recs),
            "fit_seconds_all": [r["fit_seconds"] for r in recs],
            "fits": len(recs),
            "iterations": statistics.median(r["iterations"] for r in recs),
            "passes": statistics.median(r["passes"] for r in recs) if all(r["passes"] is not None for r in recs) else None,
            "max_abs_dp_test": max(r["max_abs_dp_test"] for r in recs),
            "rel_objective_gap": max(r["rel_objective_gap"] for r in recs),
            "solver": last.get("solver"), "stop_reason": last.get("stop_reason"),
            **({"timed_out": timed_out[solver]} if solver in timed_out else {}),
        }
    return {"name": name, "n_train": int(len(ytr)), "n_test": int(len(yte)), "features": int(D), "classes": int(C),
            "CD": int(C * D), "l2": l2,
            "reference": {k: v for k, v in ref.items() if k not in ("coef", "intercept")},
            "summary": summary, "runs": runs}


def warm_up(spark, l2: float) -> None:
    """One short untimed fit of each side (Python workers, JIT, class loading) before timing."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    df = make_df(spark, X, y)
    try:
        fit_ours(df, "lbfgs", l2, max_iter=3)
        with job_group(spark.sparkContext, "warm-up", None):
            fit_mllib(spark, df, l2, 3, "warm-up")
    finally:
        df.unpersist()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="the solvers workload's Spark side (run by bench/run.py)")
    p.add_argument("--out", required=True, help="result JSON")
    p.add_argument("--datasets", default=",".join(DATASET_NAMES))
    p.add_argument("--solvers", default=",".join(SOLVERS))
    p.add_argument("--l2", type=float, default=1e-4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=42, help="train/test split seed")
    p.add_argument("--fit-timeout", type=float, default=120.0, help="seconds before a fit is cancelled (0: never)")
    p.add_argument("--repeat-max-seconds", type=float, default=20.0,
                   help="a solver whose first fit took longer is not repeated (0: always repeat)")
    a = p.parse_args(argv)
    sys.path.insert(0, REPO)
    from softmax_spark.spark.session import UDS_KEY, build_session

    loaders = datasets()
    names = [n for n in a.datasets.split(",") if n]
    solvers = [s for s in a.solvers.split(",") if s]
    # the session jobs/train.py builds (its defaults, e.g. Unix domain sockets to the Python
    # workers); MLlib's passes run in the JVM alone, so they do not depend on it
    spark = build_session("bench-solvers")
    result = {"l2": a.l2, "repeats": a.repeats, "seed": a.seed, "solvers": solvers, "fit_timeout": a.fit_timeout,
              "repeat_max_seconds": a.repeat_max_seconds, "test_fraction": TEST_FRACTION,
              "mllib_tol": MLLIB_TOL, "spark_version": spark.version, "master": spark.sparkContext.master,
              "unix_domain_sockets": spark.sparkContext.getConf().get(UDS_KEY),
              "datasets": [], "failures": []}

    def write():
        with open(a.out + ".tmp", "w") as f:
            json.dump(result, f, indent=1, default=str)
        os.replace(a.out + ".tmp", a.out)

    t0 = time.perf_counter()
    warm_up(spark, a.l2)
    result["warm_up_seconds"] = time.perf_counter() - t0
    for name in names:
        try:
            result["datasets"].append(run_dataset(spark, name, loaders[name], a.l2, a.repeats, solvers, a.seed,
                                                  a.fit_timeout, a.repeat_max_seconds))
        except Exception as exc:  # one data set failing must not lose the others
            import traceback

            traceback.print_exc()
            result["failures"].append(f"{name}: {type(exc).__name__}: {exc}")
        write()
    result["seconds"] = time.perf_counter() - t0
    write()
    spark.stop()
    return 1 if result["failures"] else 0


# --------------------------------------------------------------------------------------------
# the orchestrator side (imported by bench/run.py)


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("solvers workload")
    g.add_argument("--datasets", default=",".join(DATASET_NAMES),
                   help="solvers workload: comma list of data sets")
    g.add_argument("--solvers", default=",".join(SOLVERS),
                   help="solvers workload: comma list of solvers (ours and MLlib at maxIter 1000 / 100)")
    g.add_argument("--repeat-max-seconds", type=float, default=20.0,
                   help="solvers workload: a solver whose first fit on a data set took longer is not repeated "
                        "there (one long fit averages the jitter repeats are for); 0: always repeat")
    g.add_argument("--fit-timeout", type=float, default=120.0,
                   help="solvers workload: a fit still running after this many seconds is cancelled (its job "
                        "group), reported as timed out and not repeated on that data set; 0: never")


def check_arguments(p: argparse.ArgumentParser, a) -> None:
    for flag, given, known in (("--datasets", a.datasets, DATASET_NAMES), ("--solvers", a.solvers, SOLVERS)):
        unknown = [x for x in given.split(",") if x and x not in known]
        if unknown:
            p.error(f"{flag}: unknown {', '.join(unknown)}; expected some of {', '.join(known)}")


def _fmt(v, digits=3):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.1e}"
    return str(v)


def _short(reason, width=44) -> str:
    """A stop reason cut to ``width`` characters for the table (the JSON has it whole)."""
    reason = reason or "—"
    reason = reason if len(reason) <= width else reason[:width - 1] + "…"
    return reason.replace("|", "\\|")  # |J| inside a markdown table cell


def _targets(ds: dict, s: dict, mllib: dict | None) -> str:
    """Issue 13's targets for one of our solvers: max|Δp| ≤ 1e-6, passes ≤ 50 (C·D ≤ 4096),
    faster than MLlib at tol 1e-6 (maxIter 1000)."""
    marks = ["Δp ✓" if s["max_abs_dp_test"] <= TARGET_DP else "Δp ✗"]
    if ds["CD"] <= TARGET_CD and s.get("passes") is not None:
        marks.append("passes ✓" if s["passes"] <= TARGET_PASSES else "passes ✗")
    if mllib:
        marks.append("faster ✓" if s["fit_seconds"] < mllib["fit_seconds"] else "faster ✗")
    return " ".join(marks)


def markdown(result: dict) -> str:
    spark = result.get("spark", {})
    lines = [
        f"## Solvers against the exact optimum (issue 13) — λ = {result['l2']:g}, "
        f"{result['repeats']} repeat(s), {100 * (1 - result['test_fraction']):.0f}/{100 * result['test_fraction']:.0f} "
        f"split (seed {result['seed']})",
        "",
        "Ours: `softmax_spark.SoftmaxTrainer(optimizer=…, l2=λ)` at its defaults; MLlib: multinomial "
        f"LogisticRegression, regParam 2λ, standardization off, tol {result['mllib_tol']:g}, maxIter 1000 "
        "(`mllib`) or its default 100 (`mllib-100`). One local SparkSession "
        f"(`{result.get('master')}`), a cached DataFrame of the train split; fit s = median wall time of "
        "`fit` over `fits` fits (ours includes its ingest; a solver whose first fit took more than "
        f"{result.get('repeat_max_seconds')} s is not repeated, one still running after {result.get('fit_timeout')} s "
        "is cancelled). max|Δp| = largest difference of a test-set probability from the "
        "exact optimum's (numpy Newton at tol 1e-20 on the train split); gap = (J − J*)/|J*| on the train "
        "split. MLlib passes = its loss evaluations. Targets (ours): Δp ≤ 1e-6, passes ≤ 50 where C·D ≤ "
        "4096, faster than `mllib`.",
        "",
    ]
    if spark.get("wall_seconds") is not None:
        lines += [f"Whole spark-submit: {spark['wall_seconds']:.0f} s"
                  + (f", peak RSS {spark['peak_rss_bytes'] / 2**20:,.0f} MiB" if spark.get("peak_rss_bytes") else "")
                  + (f"; load average before {spark['loadavg_before']:.2f}" if spark.get("loadavg_before") is not None else "")
                  + ".", ""]
    for failure in result.get("failures", []):
        lines += [f"**FAILED: {failure}**", ""]
    lines += ["| data (train × D × C) | solver | fit s | fits | × mllib | iterations | passes | max abs Δp (test) | "
              "rel. J gap | stop | targets |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for ds in result["datasets"]:
        mllib = ds["summary"].get("mllib")
        for solver in result["solvers"]:
            s = ds["summary"].get(solver)
            if not s:
                continue
            if "fit_seconds" not in s:  # timed out on its first fit
                lines.append(f"| {ds['name']} ({ds['n_train']:,} × {ds['features']} × {ds['classes']}) | {solver} | "
                             f"> {result.get('fit_timeout', '?')} | 0 | | | | | | {s['timed_out']} | |")
                continue
            label = solver if solver != "auto" else f"auto → {s.get('solver')}"
            rel = s["fit_seconds"] / mllib["fit_seconds"] if mllib and mllib["fit_seconds"] else None
            lines.append(
                f"| {ds['name']} ({ds['n_train']:,} × {ds['features']} × {ds['classes']}) | {label} | "
                f"{s['fit_seconds']:.2f} | {s.get('fits', '')} | {_fmt(rel)} | {_fmt(s['iterations'])} | {_fmt(s['passes'])} | "
                f"{s['max_abs_dp_test']:.1e} | {s['rel_objective_gap']:.1e} | {_short(s.get('stop_reason'))} | "
                f"{_targets(ds, s, mllib) if solver in OURS else ''} |")
    lines += ["", "Reference check (exact optimum vs scikit-learn newton-cholesky, tol 1e-12):", "",
              "| data | J* | sklearn max abs Δp (test) | sklearn rel ΔJ | Newton s |", "|---|---:|---:|---:|---:|"]
    for ds in result["datasets"]:
        ref = ds["reference"]
        sk = ref["sklearn"]
        lines.append(f"| {ds['name']} | {ref['objective']:.10g} | {sk['max_abs_dp_test']:.1e} | "
                     f"{sk['rel_objective_diff']:.1e} | {ref['newton_seconds']:.2f} |")
    lines.append("")
    return "\n".join(lines)


def run_workload(a, bench) -> tuple[dict, int]:
    """bench/run.py's entry: spark-submit this file with the benchmark's Spark settings (one
    SparkSession), then ``<results-dir>/<name>-solvers.json`` and its markdown. (result, status)."""
    stem = a.name if a.name.endswith("-solvers") else f"{a.name}-solvers"
    out = os.path.join(bench.work, "solvers.json")
    args = ["--out", out, "--datasets", a.datasets, "--solvers", a.solvers, "--l2", repr(a.l2),
            "--repeats", str(a.repeats), "--seed", str(a.seed), "--fit-timeout", repr(a.fit_timeout),
            "--repeat-max-seconds", repr(a.repeat_max_seconds)]
    rec = bench._spark(os.path.abspath(__file__), args, "solvers")
    if os.path.exists(out):
        with open(out) as f:
            result = json.load(f)
    else:
        result = {"l2": a.l2, "repeats": a.repeats, "seed": a.seed, "solvers": a.solvers.split(","),
                  "test_fraction": TEST_FRACTION, "mllib_tol": MLLIB_TOL, "datasets": [],
                  "failures": [f"spark-submit wrote no result (rc {rec['returncode']}); see {rec['stderr']}"]}
    result["spark"] = {"cmd": rec["cmd"], "ok": rec["ok"], "returncode": rec["returncode"],
                       "wall_seconds": rec["wall_seconds"], "loadavg_before": rec["loadavg_before"],
                       "loadavg_after": rec["loadavg_after"], "peak_rss_bytes": rec["memory"].get("peak_rss_bytes"),
                       "memory": rec["memory"], "stdout": rec["stdout"], "stderr": rec["stderr"]}
    result["meta"] = {"workload": "solvers", "command": a.command, "work": bench.work}
    text = markdown(result)
    result["markdown"] = text
    os.makedirs(a.results_dir, exist_ok=True)
    json_path = os.path.join(a.results_dir, f"{stem}.json")
    with open(json_path + ".tmp", "w") as f:
        json.dump(result, f, indent=1, default=str)
    os.replace(json_path + ".tmp", json_path)
    md_path = os.path.join(a.results_dir, f"{a.name}.md")  # <name>.md alone, <name>-solvers.md with others
    with open(md_path, "w") as f:
        f.write(f"# softmax_spark benchmark — solvers\n\nCommand: `{a.command}`\n\n{text}\n"
                f"Raw numbers: `{os.path.relpath(json_path, REPO)}`.\n")
    print(text, flush=True)
    return result, (0 if rec["ok"] and not result.get("failures") else 1)


if __name__ == "__main__":
    sys.exit(main())
