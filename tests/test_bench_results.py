"""bench/results_md.py: a run rewrites its workloads' sections of RESULTS.md and keeps the others,
each with its commit, machine, load and command (no Spark)."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module():
    spec = importlib.util.spec_from_file_location("results_md", os.path.join(ROOT, "bench", "results_md.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(workload, wall_ours, wall_mllib):
    return {
        "meta": {"workload": workload, "started": "2026-12-07T10:00:00", "command": f"bench/run.py --workloads {workload}",
                 "loadavg_end": 1.5, "args": {"master": "local[2]"},
                 "host": {"cpu_count": 2, "mem_total_kib": 24 * 2**20, "python": "3.11.7", "pyspark": "4.3.0",
                          "loadavg_start": [1.25, 1.0, 1.0]}},
        "dataset": {"params": {"rows": 1000, "features": 8, "classes": 3, "kind": "gaussian"}},
        "summary": {"ours": {"wall_seconds": wall_ours, "timing.passes": 10.0, "per_pass_seconds": 0.1},
                    "mllib": {"wall_seconds": wall_mllib, "loss_evals": 20, "per_eval_seconds": 0.2}},
        "objective_agreement": {"compared": True, "ok": True, "rtol": 1e-6, "max_rel_diff": 1e-8,
                                "checks": [{"lower": "mllib"}]},
        "runs": [{"loadavg_before": 1.25}],
    }


def test_a_run_rewrites_its_sections_and_keeps_the_others(tmp_path):
    rm = _module()
    path = str(tmp_path / "RESULTS.md")
    rm.update([_result("dense", 10.0, 40.0), _result("wide", 5.0, 20.0)], commit="abc1234", path=path)
    rm.update([_result("dense", 8.0, 40.0)], commit="def5678", path=path)
    text = open(path).read()
    assert text.startswith("# Benchmark results")
    assert text.count("<!-- workload: dense -->") == 1 and text.count("<!-- workload: wide -->") == 1
    dense = text[text.index("<!-- workload: dense -->"):text.index("<!-- workload: wide -->")]
    wide = text[text.index("<!-- workload: wide -->"):]
    assert "commit: def5678" in dense and "| whole process, s | 8 | 40 | 0.20× |" in dense
    assert "commit: abc1234" in wide and "| whole process, s | 5 | 20 | 0.25× |" in wide
    for section in (dense, wide):
        assert "2 cores" in section and "load average: 1.25 at the start" in section
        assert "command: `bench/run.py --workloads" in section


def test_git_commit_names_this_checkout():
    commit = _module().git_commit()
    assert commit == "unknown" or len(commit.split("+")[0]) >= 7
