"""bench/RESULTS.md: one section per workload, rewritten by ``bench/run.py`` (``make bench``).

Each section is delimited by ``<!-- workload: NAME -->`` … ``<!-- /workload -->``; a run replaces
the sections of the workloads it ran and keeps the others, so ``--workloads solvers`` does not
erase the dense table. Every section says the commit, the machine, the load average and the
command that produced it. Raw per-run files go to ``bench/results/raw/`` (git-ignored).

    python bench/results_md.py RAW.json [RAW.json …] [--commit SHA]   # (re)write sections from raw files
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
RESULTS_MD = os.path.join(BENCH_DIR, "RESULTS.md")
HEADER = """# Benchmark results

Written by `bench/run.py` (`make bench`): each run rewrites the sections of the workloads it ran
(raw per-run JSON and Markdown go to `bench/results/raw/`, not kept in git). What each number means:
[bench/README.md](README.md). Ours and MLlib run as whole `spark-submit` processes, alternated, with
the same Spark settings; both train and save a model. Seconds are comparable only within a section
(the machine is shared; see each section's load average); compare ratios.
"""
_SECTION = re.compile(r"<!-- workload: (?P<name>[\w-]+) -->\n.*?<!-- /workload -->\n", re.S)


def git_commit(repo: str = REPO) -> str:
    """The checkout's commit, ``+dirty`` when tracked files differ from it; "unknown" outside git."""
    try:
        sha = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _f(x, digits=3) -> str:
    if x is None:
        return "—"
    if isinstance(x, (int, float)):
        if x == 0:
            return "0"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        if abs(x) < 1e-2:
            return f"{x:.2e}"
        return f"{x:.{digits}g}"
    return str(x)


def _ratio(a, b) -> str:
    return f"{a / b:.2f}×" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "—"


def _mib(x):
    return x / 2**20 if isinstance(x, (int, float)) else None


def _provenance(result: dict, commit: str) -> list[str]:
    meta = result.get("meta", {})
    host = meta.get("host", {})
    loads = [r.get("loadavg_before") for r in result.get("runs", []) if r.get("loadavg_before") is not None]
    start = (host.get("loadavg_start") or [None])[0]
    load = f"{_f(start)} at the start, {_f(meta.get('loadavg_end'))} at the end" if start is not None else "see the table's notes"
    if loads:
        load += f", median {_f(statistics.median(loads))} before the runs"
    machine = ", ".join(str(v) for v in (
        f"{host.get('cpu_count')} cores" if host.get("cpu_count") else None,
        f"{host['mem_total_kib'] / 2**20:.0f} GiB" if host.get("mem_total_kib") else None,
        host.get("platform"), f"Python {host['python']}" if host.get("python") else None,
        f"pyspark {host['pyspark']}" if host.get("pyspark") else None, host.get("java"),
        f"master {meta.get('args', {}).get('master')}" if meta.get("args", {}).get("master") else None) if v)
    if not machine and result.get("spark_version"):  # the solvers workload records its session only
        machine = f"pyspark {result['spark_version']}, master {result.get('master', '—')}"
    return [f"- commit: {commit}", f"- date: {meta.get('started', '—')}", f"- machine: {machine or '—'}",
            f"- load average: {load}", f"- command: `{meta.get('command') or meta.get('args', {}).get('command', '—')}`"]


def _versus_table(result: dict) -> list[str]:
    s, d = result.get("summary", {}), result.get("dataset", {}).get("params", {})
    o, m = s.get("ours", {}), s.get("mllib", {})
    agr = result.get("objective_agreement") or {}
    nb = ((result.get("numpy_bound") or {}).get("dtypes") or {}).get(
        "float32" if d.get("dtype") == "float32" else "float64", {}).get("bound_seconds")
    lower = {c.get("lower") for c in agr.get("checks", [])} - {None}
    rows = [
        ("whole process, s", o.get("wall_seconds"), m.get("wall_seconds")),
        ("fit, s", o.get("fit_seconds"), m.get("fit_seconds")),
        ("gradient passes (MLlib: loss evaluations)", o.get("timing.passes"), m.get("loss_evals")),
        ("s per pass (MLlib: per loss evaluation)", o.get("per_pass_seconds"), m.get("per_eval_seconds")),
        ("cached training data, MiB", _mib(o.get("cached_bytes")), _mib(m.get("cached_bytes"))),
        ("peak RSS of the process tree, MiB", _mib(o.get("memory.peak_rss_bytes")), _mib(m.get("memory.peak_rss_bytes"))),
        ("final J (numpy, our definition)", o.get("numpy.objective"), m.get("numpy.objective")),
    ]
    out = ["| | ours | MLlib | ours / MLlib |", "|---|---:|---:|---:|"]
    for label, a, b in rows:
        if a is None and b is None:
            continue
        digits = 12 if label.startswith("final J") else 3
        out.append(f"| {label} | {_f(a, digits)} | {_f(b, digits)} | {'' if label.startswith('final J') else _ratio(a, b)} |")
    bound = f"{_f(nb)} s per pass in process (ours {_ratio(o.get('per_pass_seconds'), nb)} of it)" if nb else "not measured"
    if not agr.get("compared"):
        gap = "not compared"
    elif agr.get("no_worse"):  # each side at its defaults: the check is that ours is no worse
        gap = (f"relative difference {_f(agr.get('max_rel_diff'))}, lower: {', '.join(sorted(lower)) or '—'} "
               f"({'ours no worse' if agr.get('ok') else 'ours WORSE'} than MLlib's, rtol {_f(agr.get('rtol'))})")
    else:
        gap = (f"relative difference {_f(agr.get('max_rel_diff'))} ({'within' if agr.get('ok') else 'OUTSIDE'} "
               f"rtol {_f(agr.get('rtol'))}; lower: {', '.join(sorted(lower)) or '—'})")
    out += ["", f"Arithmetic bound (`bench/numpy_bound.py`): {bound}. Final objectives: {gap}. "
            "The exact optimum is not computed for this workload; the `solvers` workload measures the gap to it."]
    return out


def _scaling_table(result: dict) -> list[str]:
    out = []
    if result.get("scaling"):
        out += ["| rows | ours s/pass | MLlib s/loss evaluation | ours wall s | MLlib wall s |", "|---:|---:|---:|---:|---:|"]
        out += [f"| {r['rows']:,} | {_f(r.get('ours_per_pass_seconds'))} | {_f(r.get('mllib_per_eval_seconds'))} | "
                f"{_f(r.get('ours_wall_seconds'))} | {_f(r.get('mllib_wall_seconds'))} |" for r in result["scaling"]]
        lin = result.get("scaling_linearity")
        if lin:
            out += ["", f"Ours per pass at {lin['rows']:,} / at {lin['base_rows']:,} rows: {lin['ratio']:.2f}× "
                    f"(linear goal ≤ {lin['goal']:.1f}×)."]
    if result.get("scaling_partitions"):
        out += ["", "| partitions | rows | ours s/pass | ingest s |", "|---:|---:|---:|---:|"]
        out += [f"| {r['partitions']} | {r['rows']:,} | {_f(r.get('ours_per_pass_seconds'))} | {_f(r.get('ingest_seconds'))} |"
                for r in result["scaling_partitions"]]
    return out


def _connect_table(result: dict) -> list[str]:
    s = result.get("summary", {})
    c, r = s.get("classic", {}), s.get("connect", {})
    rows = [("s per pass", "per_pass_seconds"), ("ingest, s", "ingest_seconds"), ("fit, s", "fit_seconds"),
            ("passes", "timing.passes"), ("whole process, s (the Connect server was already running)", "wall_seconds")]
    out = ["| | classic | Connect | Connect / classic |", "|---|---:|---:|---:|"]
    out += [f"| {label} | {_f(c.get(k))} | {_f(r.get(k))} | {_ratio(r.get(k), c.get(k))} |" for label, k in rows]
    diffs = [p.get("max_abs_coef_diff") for p in result.get("pairs", []) if p.get("max_abs_coef_diff") is not None]
    if diffs:
        out += ["", f"Same model: max |Δcoef| {_f(max(diffs))} between the classic and the Connect run."]
    return out


def section(result: dict, commit: str) -> str:
    """The Markdown section of one workload's result (as ``run.py`` returns and dumps it)."""
    meta = result.get("meta", {})
    name = meta.get("workload", "unknown")
    d = result.get("dataset", {}).get("params", {})
    shape = (f" — {d['rows']:,} × {d['features']:,} × {d['classes']} {d.get('kind', '')}".rstrip()
             if d.get("rows") and name not in ("scaling",) else "")
    lines = [f"<!-- workload: {name} -->", f"## {name}{shape}", "", *_provenance(result, commit), ""]
    if name == "scaling":
        lines += _scaling_table(result)
    elif name == "connect":
        lines += _connect_table(result)
    elif result.get("markdown"):  # solvers: its own table
        body = re.sub(r"^#+ .*\n", "", result["markdown"].strip() + "\n", count=1)
        lines += [body.rstrip()]
    else:
        lines += _versus_table(result)
    return "\n".join(lines).rstrip() + "\n<!-- /workload -->\n"


def update(results: list[dict], commit: str | None = None, path: str = RESULTS_MD) -> str:
    """Replace (or add) the sections of ``results``' workloads in ``path``; returns the path."""
    commit = commit or git_commit()
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else HEADER
    sections = {m.group("name"): m.group(0) for m in _SECTION.finditer(text)}
    for r in results:
        sections[r.get("meta", {}).get("workload", "unknown")] = section(r, commit)
    head = text[: _SECTION.search(text).start()] if _SECTION.search(text) else text
    order = ["dense", "dense32", "sparse", "wide", "manyclasses", "small", "scaling", "solvers", "connect", "anchors"]
    names = sorted(sections, key=lambda n: (order.index(n) if n in order else len(order), n))
    out = head.rstrip() + "\n\n" + "\n".join(sections[n] for n in names)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(out)
    os.replace(tmp, path)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="(re)write bench/RESULTS.md sections from raw result JSON files")
    p.add_argument("files", nargs="+", help="raw result JSON files of bench/run.py (one workload each)")
    p.add_argument("--commit", default=None, help="the commit the runs measured (default: this checkout's)")
    p.add_argument("--out", default=RESULTS_MD)
    a = p.parse_args(argv)
    results = [json.load(open(f, encoding="utf-8")) for f in a.files]
    print(update(results, a.commit, a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
