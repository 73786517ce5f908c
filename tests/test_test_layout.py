"""The test suite's own layout (issue #25): one test file per module, shared data generators written
once (``core_helpers``), and no more private names of the package used by tests than today."""

import ast
import collections
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")

# modules whose tests live in a file named otherwise (the name before the move into subpackages,
# or the feature they implement): module → that file
TEST_HOMES = {
    "softmax_spark.cli.jobs_common": "test_failures.py",
    "softmax_spark.cli.checks": "test_failures.py",
    "softmax_spark.io.console": "test_training.py",
    "softmax_spark.io.driver_paths": "test_storage.py",
    "softmax_spark.io.uris": "test_storage.py",
    "softmax_spark.io.local_storage": "test_storage.py",
    "softmax_spark.io.hadoop_storage": "test_storage.py",
    "softmax_spark.io.publish": "test_storage.py",
    "softmax_spark.io.mllib_layout": "test_mllib_io.py",
    "softmax_spark.spark.block_writer": "test_ingest.py",
    "softmax_spark.spark.blocks": "test_ingest.py",
    "softmax_spark.spark.classic_ingest": "test_ingest.py",
    "softmax_spark.spark.data_summary": "test_ingest.py",
    "softmax_spark.spark.input_files": "test_ingest.py",
    "softmax_spark.spark.moments": "test_ingest.py",
    "softmax_spark.spark.run_dir": "test_ingest.py",
    "softmax_spark.spark.losses": "test_backend.py",
    "softmax_spark.spark.tasks": "test_resident.py",
    "softmax_spark.spark.pyspark_install": "test_session.py",
    "softmax_spark.fit.parsing": "test_config.py",
    "softmax_spark.fit.coefficients": "test_inference.py",
    "softmax_spark.io.spark_ml_io": "test_model_io.py",
    "softmax_spark.version": "test_api_naming.py",
    "softmax_spark.sparkml.persistence": "test_ml.py",
    "softmax_spark.core.penalties.base": "test_penalties.py",
    "softmax_spark.core.penalties.bounds": "test_penalties.py",
    "softmax_spark.core.penalties.l1": "test_penalties.py",
    "softmax_spark.core.penalties.l2": "test_penalties.py",
    "softmax_spark.core.penalties.separable": "test_penalties.py",
    "softmax_spark.spark.connect_backend": "test_connect.py",
    "softmax_spark.spark.connect_server": "test_connect.py",
    "softmax_spark.spark.distributed": "test_cluster.py",
    "softmax_spark.spark.inference_pass": "test_inference.py",
    "softmax_spark.spark.shipping": "test_notebook.py",
    "softmax_spark.sparkml.classification": "test_ml.py",
    "softmax_spark.sparkml.diagnostics": "test_ml_language.py",
    "softmax_spark.sparkml.fit_multiple": "test_cv.py",
    "softmax_spark.sparkml.mlflow_support": "test_mlflow.py",
    "softmax_spark.sparkml.tuning": "test_cv.py",
    "softmax_spark.worker_daemon": "test_session.py",
}
# private (_name) attributes of the package that tests use today, counted by ``_private_uses``; a new
# use should be a public seam instead (this number may only go down)
MAX_PRIVATE_NAMES = 35


def _modules():
    for p in sorted(glob.glob(os.path.join(ROOT, "softmax_spark", "**", "*.py"), recursive=True)):
        rel = os.path.relpath(p, ROOT)[:-3].replace(os.sep, ".")
        if not rel.endswith("__init__"):
            yield rel


def _candidates(module):
    parts = module.split(".")
    return [f"test_{parts[-1]}.py", f"test_{'_'.join(parts[-2:])}.py"]


def test_every_module_has_a_test_file():
    files = {os.path.basename(p) for p in glob.glob(os.path.join(TESTS, "test_*.py"))}
    missing = [m for m in _modules() if not any(c in files for c in _candidates(m)) and m not in TEST_HOMES]
    assert not missing, f"modules without tests/test_<module>.py (or a TEST_HOMES entry): {missing}"
    for module, home in TEST_HOMES.items():
        assert home in files, f"{module}: {home} does not exist"


def test_data_generators_are_defined_once():
    defs = collections.Counter()
    for p in glob.glob(os.path.join(TESTS, "*.py")):
        for m in re.finditer(r"^def (make_data|softmax_data|kernel_data|classification_data)\(", open(p).read(), re.M):
            defs[(m.group(1), os.path.basename(p))] += 1
    assert sorted(defs) == [("classification_data", "core_helpers.py"), ("kernel_data", "core_helpers.py"),
                            ("make_data", "core_helpers.py"), ("softmax_data", "core_helpers.py")]


def _private_uses():
    """{"module._name": [test files]} for every private name of softmax_spark a test imports,
    reads as a module attribute or monkeypatches by name."""
    uses = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(TESTS, "*.py"))):
        tree = ast.parse(open(path, encoding="utf-8").read())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("softmax_spark"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        uses[f"{node.module}.{a.name}"].append(os.path.basename(path))
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                aliases.update({a.asname or a.name: a.name for a in node.names if a.name.startswith("softmax_spark")})
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and len(node.args) >= 2 and isinstance(node.args[0], ast.Name)
                    and node.args[0].id in aliases and isinstance(node.args[1], ast.Constant)
                    and str(node.args[1].value).startswith("_") and not str(node.args[1].value).startswith("__")):
                uses[f"{aliases[node.args[0].id]}.{node.args[1].value}"].append(os.path.basename(path))
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in aliases):
                uses[f"{aliases[node.value.id]}.{node.attr}"].append(os.path.basename(path))
    return uses


def test_tests_use_no_more_private_names_than_today():
    uses = _private_uses()
    listing = "\n".join(f"{len(v):3d} {k}" for k, v in sorted(uses.items(), key=lambda kv: -len(kv[1])))
    assert len(uses) <= MAX_PRIVATE_NAMES, f"{len(uses)} private names used by tests (at most {MAX_PRIVATE_NAMES}):\n{listing}"
