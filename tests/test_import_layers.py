"""The import-layer contract (``.importlinter``, docs/reference/api/layers.md) holds: each floor of
the package imports only the floors below it (function-local imports and indirect chains count),
core and solvers import no pyspark / py4j, and no two modules of one package import each other in a
cycle. Runs import-linter on this checkout's sources (no Spark, about a second)."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, ".importlinter")

pytest.importorskip("importlinter", reason="import-linter is in the dev extra (make setup installs it)")


def _lint(source_root: str) -> subprocess.CompletedProcess:
    """``lint-imports`` with the repository's contract over the package under ``source_root``."""
    env = {**os.environ, "PYTHONPATH": source_root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
         "--config", CONFIG, "--no-cache"],
        cwd=source_root, env=env, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_import_layers():
    run = _lint(ROOT)
    assert run.returncode == 0, f"import-layer contract broken (.importlinter):\n{run.stdout[-6000:]}{run.stderr[-2000:]}"
    assert "0 broken" in run.stdout


@pytest.mark.parametrize("module, line, broken", [
    # an upward import inside a function is still one
    ("core/model.py", "\n\ndef _upward():\n    from softmax_spark.io.model_io import save_model\n", "Each floor"),
    ("core/loss.py", "\nimport pyspark  # noqa: F401\n", "no pyspark"),
])
def test_a_new_upward_import_breaks_the_contract(tmp_path, module, line, broken):
    """The check is live: one added import into a copy of the package makes lint-imports fail,
    naming the broken contract."""
    shutil.copytree(os.path.join(ROOT, "softmax_spark"), tmp_path / "softmax_spark",
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "softmax_spark" / module, "a", encoding="utf-8") as f:
        f.write(line)
    run = _lint(str(tmp_path))
    assert run.returncode != 0, run.stdout[-3000:]
    assert f"{broken}" in run.stdout and "BROKEN" in run.stdout
