"""softmax_spark.io.storage and everything routed through it (issue 10 item 4; issue 16 items 1, 5, 6, 15).

The Hadoop backend is tested on a ``viewfs://`` mount: a real Hadoop FileSystem with its own
scheme (code that treats the URI as a local path fails there as on HDFS or S3), mapped onto a
local folder so the files can be checked. Each test adds its own mount table at runtime (Hadoop
caches a FileSystem per scheme and authority, so a name is never reused).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from helpers import make_data, write_parquet
from softmax_spark import InputError, ModelFormatError, SoftmaxModel, load_model, save_model
from softmax_spark.io import publish, storage
from softmax_spark.io.checkpoint import finish_run, latest_checkpoint, run_directory, save_checkpoint
from softmax_spark.io.hadoop_storage import HadoopStorage
from softmax_spark.io.local_storage import LocalStorage

REPO = Path(__file__).resolve().parents[1]


def mount(spark, target: Path) -> str:
    """A fresh viewfs mount table whose ``/store`` is the local folder ``target``; returns
    ``viewfs://<table>/store``."""
    table = "t" + uuid.uuid4().hex[:12]
    target.mkdir(parents=True, exist_ok=True)
    spark.sparkContext._jsc.hadoopConfiguration().set(f"fs.viewfs.mounttable.{table}.link./store", target.as_uri())
    return f"viewfs://{table}/store"


@pytest.fixture
def store(spark, tmp_path):
    """(viewfs root URI, the local folder it maps to)."""
    target = tmp_path / "mounted"
    return mount(spark, target), target


def visible(directory: Path) -> list[str]:
    """Names in ``directory`` without Hadoop's checksum files."""
    return sorted(n for n in os.listdir(directory) if not n.endswith(".crc"))


# -- URIs ---------------------------------------------------------------------------------------
def test_uri_helpers():
    assert storage.is_local("out/m1") and storage.is_local("/a/b") and storage.is_local("file:///a/b")
    assert not storage.is_local("viewfs://default/store/m") and not storage.is_local("s3a://bucket/m")
    assert storage.local_path("file:///a/b") == "/a/b" == storage.local_path("file:/a/b")
    assert storage.local_path("file://localhost/a/b") == "/a/b"
    with pytest.raises(InputError, match="another host|names host"):
        storage.local_path("file://elsewhere/a")
    assert storage.join("viewfs://t/store/", "m", "x.json") == "viewfs://t/store/m/x.json"
    sibling = storage.hidden_sibling("viewfs://t/store/models/m1", "tmp")
    assert sibling.startswith("viewfs://t/store/models/.m1.tmp-")
    assert storage.hidden_sibling("/m1", "old").startswith("/.m1.old-")


# -- the local backend (no Spark) -------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["plain", "file-uri"])
def test_local_backend_operations(tmp_path, spelling):
    root = str(tmp_path) if spelling == "plain" else tmp_path.as_uri()
    data = storage.join(root, "d", "x.bin")
    assert not storage.exists(data)
    storage.write_bytes(data, b"\x00abc")
    assert storage.read_bytes(data) == b"\x00abc" and (tmp_path / "d" / "x.bin").read_bytes() == b"\x00abc"
    assert storage.is_dir(storage.join(root, "d")) and not storage.is_dir(data)
    assert storage.list_names(storage.join(root, "d")) == ["x.bin"]  # no temporary left
    storage.makedirs(storage.join(root, "d", "e", "f"))
    storage.rename(storage.join(root, "d", "e"), storage.join(root, "d", "g"))
    assert sorted(storage.list_names(storage.join(root, "d"))) == ["g", "x.bin"]
    assert storage.qualify(storage.join(root, "d")) == "file:" + str(tmp_path / "d")
    assert storage.delete(storage.join(root, "d")) and not storage.delete(storage.join(root, "d"))
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(data)
    with pytest.raises(FileNotFoundError):
        storage.list_names(storage.join(root, "d"))


def test_local_atomic_directory_publishes_replaces_and_rolls_back(tmp_path):
    target = tmp_path / "out" / "m"
    with storage.atomic_directory(str(target), what="model directory") as local:
        assert Path(local).parent == target.parent and Path(local).name.startswith(".m.tmp-")
        (Path(local) / "a.txt").write_text("one")
    assert os.listdir(target) == ["a.txt"]
    with pytest.raises(InputError, match=r"model directory .*m already exists; pass --overwrite"):
        with storage.atomic_directory(str(target), what="model directory"):
            pass
    with pytest.raises(RuntimeError):
        with storage.atomic_directory(str(target), overwrite=True) as local:
            (Path(local) / "b.txt").write_text("half")
            raise RuntimeError("killed mid-write")
    assert os.listdir(target) == ["a.txt"] and os.listdir(tmp_path / "out") == ["m"]
    with storage.atomic_directory(target.as_uri(), overwrite=True) as local:
        (Path(local) / "b.txt").write_text("two")
    assert os.listdir(target) == ["b.txt"] and os.listdir(tmp_path / "out") == ["m"]  # old one gone


def test_a_uri_without_spark_is_refused_in_one_line(tmp_path):
    """No SparkSession in the process: a viewfs:// model dir is refused, never a local folder."""
    code = (
        "import os, sys\n"
        f"os.chdir({str(tmp_path)!r})\n"
        "from softmax_spark import load_model, save_model, SoftmaxModel, InputError\n"
        "import numpy as np\n"
        "for call in (lambda: load_model('viewfs://default/store/m1'),\n"
        "             lambda: save_model(SoftmaxModel(np.zeros((2, 1)), np.zeros(2), [0, 1]), 'viewfs://default/store/m1')):\n"
        "    try:\n"
        "        call()\n"
        "    except InputError as exc:\n"
        "        print(exc)\n"
        "print(sorted(os.listdir('.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0, out.stderr
    assert len(lines) == 3 and all("viewfs://default/store/m1" in line and "no SparkSession" in line
                                   for line in lines[:2]), lines
    assert lines[2] == "[]"


# -- the Hadoop backend on a viewfs mount ---------------------------------------------------------
def test_hadoop_backend_operations(spark, store):
    root, target = store
    uri = storage.join(root, "d", "x.json")
    assert type(storage.filesystem(uri)).__name__ == "HadoopStorage"
    assert not storage.exists(uri)
    storage.write_bytes(uri, b'{"a": 1}')
    assert (target / "d" / "x.json").read_bytes() == b'{"a": 1}'
    assert storage.read_bytes(uri) == b'{"a": 1}'
    assert storage.exists(uri) and storage.is_dir(storage.join(root, "d")) and not storage.is_dir(uri)
    assert storage.list_names(storage.join(root, "d")) == ["x.json"]
    storage.makedirs(storage.join(root, "d", "e"))
    storage.rename(storage.join(root, "d", "e"), storage.join(root, "d", "f"))
    assert visible(target / "d") == ["f", "x.json"]
    assert storage.qualify(storage.join(root, "d")) == storage.join(root, "d")
    assert storage.delete(storage.join(root, "d")) and not (target / "d").exists()
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(uri)
    with pytest.raises(FileNotFoundError):
        storage.list_names(storage.join(root, "d"))


def test_hadoop_atomic_directory_and_local_copy(spark, store):
    root, target = store
    uri = storage.join(root, "models", "m")
    with storage.atomic_directory(uri, what="model directory") as local:
        assert not Path(local).is_relative_to(target)  # filled locally, then copied
        (Path(local) / "a.txt").write_text("one")
        (Path(local) / "sub").mkdir()
        (Path(local) / "sub" / "b.txt").write_text("two")
    assert visible(target / "models") == ["m"] and visible(target / "models" / "m") == ["a.txt", "sub"]
    with pytest.raises(InputError, match="already exists"):
        with storage.atomic_directory(uri, what="model directory"):
            pass
    with pytest.raises(RuntimeError):
        with storage.atomic_directory(uri, overwrite=True) as local:
            (Path(local) / "c.txt").write_text("half")
            raise RuntimeError("killed")
    assert visible(target / "models") == ["m"] and visible(target / "models" / "m") == ["a.txt", "sub"]
    with storage.atomic_directory(uri, overwrite=True) as local:
        (Path(local) / "c.txt").write_text("three")
    assert visible(target / "models") == ["m"] and visible(target / "models" / "m") == ["c.txt"]
    with storage.local_copy(uri) as local:
        assert os.listdir(local) == ["c.txt"] and Path(local, "c.txt").read_text() == "three"
        copied = local
    assert not os.path.exists(copied)


def test_unknown_scheme_and_paths_outside_the_mount_are_refused_in_one_line(spark, store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(InputError) as info:
        storage.check_writable("foo://x/m", False, "--model-dir")
    message = str(info.value)
    assert "\n" not in message and message.startswith("--model-dir foo://x/m") and "scheme 'foo'" in message
    with pytest.raises(InputError, match="foo://x/m"):
        save_model(SoftmaxModel(np.zeros((2, 1)), np.zeros(2), [0, 1]), "foo://x/m")
    with pytest.raises(ModelFormatError, match="does not exist"):
        load_model(store[0].replace("/store", "/elsewhere") + "/m")
    assert sorted(os.listdir(tmp_path)) == before  # nothing local, no folder named foo:


# -- model directories, MLlib copies and warm starts on viewfs --------------------------------------
def _model(classes=("a", "b", "c"), n_features=4, seed=0):
    rng = np.random.default_rng(seed)
    return SoftmaxModel(rng.normal(size=(len(classes), n_features)), rng.normal(size=len(classes)), list(classes),
                        history=[{"iteration": 1, "objective": 0.5}], metadata={"l2": 0.01, "fit_intercept": True})


def test_model_and_mllib_copy_round_trip_on_viewfs(spark, store):
    from pyspark.ml.classification import LogisticRegressionModel

    from softmax_spark.io.mllib_io import read_mllib_model, write_mllib_model

    root, target = store
    model = _model()
    uri = storage.join(root, "models", "m1")
    save_model(model, uri, extra_writer=lambda local: write_mllib_model(model, os.path.join(local, "mllib")))
    assert {"metadata.json", "coef.npy", "intercept.npy", "history.json", "mllib"} <= set(visible(target / "models" / "m1"))
    back = load_model(uri)
    np.testing.assert_array_equal(back.coef, model.coef)
    assert back.classes == model.classes and back.history == model.history
    assert load_model(str(target / "models" / "m1")).classes == ["a", "b", "c"]  # the same files, locally
    mllib = read_mllib_model(storage.join(uri, "mllib"))
    np.testing.assert_array_equal(mllib.coef, model.coef)
    # Spark itself reads the MLlib copy through the same URI
    assert LogisticRegressionModel.load(storage.join(uri, "mllib")).numClasses == 3
    write_mllib_model(model, storage.join(root, "alone"))
    assert read_mllib_model(storage.join(root, "alone")).n_features == 4
    with pytest.raises(InputError, match="already exists"):
        write_mllib_model(model, storage.join(root, "alone"))


def test_a_tampered_remote_model_is_refused_without_unpickling(spark, store):
    root, target = store
    uri = storage.join(root, "m")
    save_model(_model(), uri)
    np.save(target / "m" / "coef.npy", np.array([object()] * 12, dtype=object).reshape(3, 4), allow_pickle=True)
    os.remove(target / "m" / ".coef.npy.crc")  # as if written by another tool
    with pytest.raises(ModelFormatError, match=r"viewfs://.*/m/coef.npy is not a plain numeric"):
        load_model(uri)


def test_load_any_model_matches_classes_and_requires_the_mllib_class_order(spark, store, caplog):
    from softmax_spark.io.mllib_io import write_mllib_model
    from softmax_spark.io.model_io import load_any_model

    root, _ = store
    # an MLlib model fitted on StringIndexer's frequency order: index 0 = "c", 1 = "a", 2 = "b"
    mllib_order = ["c", "a", "b"]
    trained = _model(classes=mllib_order)
    path = storage.join(root, "mllib")
    write_mllib_model(trained, path)
    with pytest.raises(InputError) as info:
        load_any_model(path, classes=["a", "b", "c"])
    assert "carries no label names" in str(info.value) and "--init-model-classes" in str(info.value)
    assert "\n" not in str(info.value)
    with caplog.at_level("INFO", logger="softmax_spark"):
        init = load_any_model(path, classes=["a", "b", "c"], mllib_classes=mllib_order, n_features=4)
    assert init.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(init.coef, trained.coef[[1, 2, 0]])
    np.testing.assert_array_equal(init.intercept, trained.intercept[[1, 2, 0]])
    assert f"warm start from {path}" in caplog.text and "'a' = label index 1" in caplog.text
    with pytest.raises(InputError, match="2 labels, the MLlib model .* has 3 classes"):
        load_any_model(path, classes=["a", "b", "c"], mllib_classes=["a", "b"])
    with pytest.raises(InputError, match="has 4 features, the data has 5"):
        load_any_model(path, classes=["a", "b", "c"], mllib_classes=mllib_order, n_features=5)
    # numeric labels given as text match the data's numbers; ours are reordered by value
    numeric = storage.join(root, "numeric")
    write_mllib_model(_model(classes=[0, 1, 2]), numeric)
    assert load_any_model(numeric, classes=[0, 1, 2], mllib_classes=["2", "0", "1"]).classes == [0, 1, 2]
    ours = storage.join(root, "ours")
    save_model(_model(classes=[2, 0, 1]), ours)
    np.testing.assert_array_equal(load_any_model(ours, classes=[0, 1, 2]).coef, _model(classes=[2, 0, 1]).coef[[1, 2, 0]])
    with pytest.raises(InputError, match=r"has classes \[2, 0, 1\], the data has \[0, 1, 3\]"):
        load_any_model(ours, classes=[0, 1, 3])


# -- checkpoints ---------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["local", "viewfs"])
def test_checkpoints_are_kept_per_run(spark, store, tmp_path, where):
    root = storage.join(store[0], "ck") if where == "viewfs" else str(tmp_path / "ck")
    local = store[1] / "ck" if where == "viewfs" else tmp_path / "ck"
    for iteration in (1, 2, 3):
        save_checkpoint(root, iteration, {"theta": np.full(3, float(iteration))}, {"step": iteration},
                        [{"iteration": i} for i in range(1, iteration + 1)], "day1")
    save_checkpoint(root, 5, {"theta": np.zeros(3)}, {}, [], "day2")
    assert visible(local) == ["day1", "day2"] and visible(local / "day1") == ["ckpt-00000002", "ckpt-00000003"]
    restored = latest_checkpoint(root, "day1")
    assert restored.iteration == 3 and restored.path == storage.join(run_directory(root, "day1"), "ckpt-00000003")
    np.testing.assert_array_equal(restored.arrays["theta"], np.full(3, 3.0))
    assert restored.history[-1] == {"iteration": 3} and restored.scalars == {"step": 3}
    assert latest_checkpoint(root, "day3") is None  # another run's checkpoints: ignored, no error
    finish_run(root, "day1", converged=False)  # stopped by max_iter: stays resumable
    assert latest_checkpoint(root, "day1").iteration == 3
    finish_run(root, "day1", converged=True)
    assert latest_checkpoint(root, "day1") is None and visible(local) == ["day2"]


def test_stale_runs_are_removed_when_a_new_run_starts(tmp_path):
    root = str(tmp_path)
    save_checkpoint(root, 1, {"theta": np.zeros(2)}, {}, [], "old")
    save_checkpoint(root, 1, {"theta": np.zeros(2)}, {}, [], "recent")
    state_file = tmp_path / "old" / "ckpt-00000001" / "state.json"
    state = json.loads(state_file.read_text())
    state["saved_at"] = time.time() - 8 * 86400  # eight days ago
    state_file.write_text(json.dumps(state))
    (tmp_path / "old" / ".ckpt-00000002.tmp-123456789abc").mkdir()  # a save killed mid-way
    save_checkpoint(root, 1, {"theta": np.zeros(2)}, {}, [], "new")
    assert sorted(os.listdir(tmp_path)) == ["new", "recent"]
    save_checkpoint(root, 2, {"theta": np.zeros(2)}, {}, [], "new")
    (tmp_path / "new" / ".ckpt-00000003.tmp-123456789abc").mkdir()
    save_checkpoint(root, 3, {"theta": np.zeros(2)}, {}, [], "new")
    assert sorted(os.listdir(tmp_path / "new")) == ["ckpt-00000002", "ckpt-00000003"]


# -- the jobs, end to end, in process ---------------------------------------------------------------
def _job(name):
    from test_failures import EVALUATE_JOB, TRAIN_JOB, _load_job

    return _load_job(TRAIN_JOB if name == "train" else EVALUATE_JOB, f"softmax_spark_{name}_job_storage").main


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    X, y = make_data(n=150, d=4, c=3, seed=8)
    return str(write_parquet(tmp_path_factory.mktemp("storage_data") / "data.parquet", X, y)), X, y


def _last_error(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_train_and_evaluate_on_viewfs(spark, store, labelled, tmp_path, capfd, caplog, monkeypatch):
    """Model dir, checkpoints, predictions, metrics and plots on a viewfs mount: the files land
    under the mount's target, nothing in the working directory; the evaluation prints no
    "All paths were ignored" warning; --init-model reads the remote model and its MLlib copy."""
    root, target = store
    data, X, _ = labelled
    monkeypatch.chdir(tmp_path)
    train, evaluate = _job("train"), _job("evaluate")
    common = ["--input", data, "--l2", "1e-3", "--max-iter", "12", "--tol", "0", "--checkpoint-every", "5",
              "--optimizer", "lbfgs"]  # lbfgs at tol 0 runs to max_iter: its checkpoints stay
    assert train([*common, "--model-dir", f"{root}/models/m1", "--checkpoint-dir", f"{root}/ck"], spark=spark) == 0
    assert {"metadata.json", "coef.npy", "intercept.npy", "history.json", "mllib"} <= set(visible(target / "models" / "m1"))
    (run,) = visible(target / "ck")
    assert visible(target / "ck" / run) == ["ckpt-00000005", "ckpt-00000010"]  # max_iter: kept, resumable
    model = load_model(f"{root}/models/m1")
    assert len(model.history) == 12

    # Spark's reader skips (and warns about) a path whose last name starts with '.' or '_': the
    # evaluation reads its staged output back under a visible name (the JVM's log is not
    # capturable here; test_evaluation's spark-submit test checks the warning itself)
    from pyspark.sql.readwriter import DataFrameReader

    read_paths, parquet = [], DataFrameReader.parquet
    monkeypatch.setattr(DataFrameReader, "parquet", lambda self, *paths, **kw: read_paths.extend(paths)
                        or parquet(self, *paths, **kw))
    assert evaluate(["--model-dir", f"{root}/models/m1", "--input", data, "--output", f"{root}/pred"],
                    spark=spark) == 0
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    staged = [p for p in read_paths if "/.pred.tmp-" in p]
    assert staged and not [p for p in read_paths if storage.basename(p).startswith((".", "_"))], read_paths
    assert visible(target) == ["ck", "models", "pred", "pred.metrics.json", "pred.plots"]
    assert spark.read.parquet(str(target / "pred")).count() == 150
    metrics = json.loads((target / "pred.metrics.json").read_text())
    assert metrics["output"] == f"{root}/pred" and metrics["model_dir"] == f"{root}/models/m1"
    assert "training_curve.png" in visible(target / "pred.plots")

    # warm starts from the remote model and from its MLlib copy (class order stated)
    with caplog.at_level("INFO", logger="softmax_spark"):
        assert train([*common, "--model-dir", f"{root}/models/m2", "--init-model", f"{root}/models/m1",
                      "--max-iter", "2"], spark=spark) == 0
        assert f"warm start from {root}/models/m1 (softmax_spark model)" in caplog.text
        capfd.readouterr()
        assert train([*common, "--model-dir", f"{root}/models/m3", "--init-model", f"{root}/models/m1/mllib",
                      "--max-iter", "2"], spark=spark) == 2
        last = _last_error(capfd)
        assert last.startswith("error: --init-model") and "--init-model-classes" in last
        caplog.clear()
        assert train([*common, "--model-dir", f"{root}/models/m3", "--init-model", f"{root}/models/m1/mllib",
                      "--init-model-classes", "0,1,2", "--max-iter", "2"], spark=spark) == 0
        assert "(MLlib LogisticRegressionModel): classes matched 0 = label index 0" in caplog.text
    assert os.listdir(tmp_path) == ["mounted"]  # nothing written to the working directory


def test_an_unknown_scheme_is_refused_and_creates_nothing(spark, labelled, tmp_path, capsys, monkeypatch):
    data, _, _ = labelled
    monkeypatch.chdir(tmp_path)
    train, evaluate = _job("train"), _job("evaluate")
    for argv in (["--model-dir", "foo://x/m"], ["--model-dir", str(tmp_path / "m"), "--checkpoint-dir", "foo://x/ck"],
                 ["--model-dir", str(tmp_path / "m"), "--init-model", "foo://x/init"]):
        assert train(["--input", data, "--max-iter", "2", *argv], spark=spark) == 2
        last = _last_error(capsys)
        assert last.startswith("error: ") and "foo://x/" in last and "scheme 'foo'" in last, last
    save_model(_model(classes=[0, 1, 2]), str(tmp_path / "model"))
    assert evaluate(["--model-dir", str(tmp_path / "model"), "--input", data, "--output", "foo://x/pred"],
                    spark=spark) == 2
    last = _last_error(capsys)
    assert last.startswith("error: --output foo://x/pred") and "scheme 'foo'" in last
    assert os.listdir(tmp_path) == ["model"]


def _resume_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "resuming from iteration" in line]


def test_day_two_and_finished_runs_with_a_fixed_checkpoint_dir(spark, tmp_path, capsys, caplog):
    """A daily job: new data at the same --checkpoint-dir trains (exit 0) beside yesterday's
    checkpoints; a run that converged removes its checkpoints, so running it again with
    --overwrite trains from iteration 1 instead of resuming a finished run."""
    train = _job("train")
    X, y = make_data(n=120, d=3, c=3, seed=1)
    day1 = str(write_parquet(tmp_path / "day1.parquet", X, y))
    X2, y2 = make_data(n=120, d=3, c=3, seed=2)
    day2 = str(write_parquet(tmp_path / "day2.parquet", X2, y2))
    ck = tmp_path / "ck"
    model_dir = ["--model-dir", str(tmp_path / "model"), "--overwrite", "--no-write-mllib"]
    common = ["--checkpoint-dir", str(ck), "--checkpoint-every", "2", "--max-iter", "4", "--tol", "0", *model_dir]
    assert train(["--input", day1, *common], spark=spark) == 0
    (day1_run,) = os.listdir(ck)
    capsys.readouterr()
    with caplog.at_level("INFO", logger="softmax_spark"):
        assert train(["--input", day2, *common], spark=spark) == 0
    assert not _resume_lines(capsys.readouterr().out)
    assert "no checkpoint of run" in caplog.text and f"other runs there: {day1_run}" in caplog.text
    assert len(os.listdir(ck)) == 2 and day1_run in os.listdir(ck)
    assert [h["iteration"] for h in load_model(str(tmp_path / "model")).history] == [1, 2, 3, 4]

    # a converged run: its checkpoints go; the rerun trains from the start
    converging = ["--input", day1, "--max-iter", "300", "--tol", "1e-6", "--checkpoint-every", "1",
                  "--checkpoint-dir", str(tmp_path / "ck2"), *model_dir]
    assert train(converging, spark=spark) == 0
    first = load_model(str(tmp_path / "model"))
    assert "max_iter" not in first.metadata["stop_reason"] and os.listdir(tmp_path / "ck2") == []
    capsys.readouterr()
    assert train(converging, spark=spark) == 0
    assert not _resume_lines(capsys.readouterr().out)
    again = load_model(str(tmp_path / "model"))
    assert len(again.history) == len(first.history)
    np.testing.assert_allclose(again.coef, first.coef, rtol=0, atol=1e-12)


# -- crash-safe replacement (issue 24 item 3) --------------------------------------------------------
_KILL_SCRIPT = """
import os, sys
import numpy as np
from softmax_spark import SoftmaxModel, save_model
from softmax_spark.io import publish
path, step, atomic = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
publish._use_renameat2 = atomic
publish._crash_hook = lambda name: os._exit(17) if name == step else None
save_model(SoftmaxModel(np.full((3, 4), 2.0), np.zeros(3), ["a", "b", "c"]), path, overwrite=True)
os._exit(3)  # the step was never reached
"""


@pytest.mark.parametrize("atomic,step", [(True, "staged"), (True, "exchanged"), (True, "published"),
                                         (False, "staged"), (False, "aside"), (False, "renamed-in"),
                                         (False, "published")])
def test_every_kill_point_of_an_overwrite_leaves_a_loadable_model(tmp_path, atomic, step):
    """A process killed (os._exit) after each step of ``--overwrite``'s publish: the name holds the
    old or the new model (after ``load_model``'s recovery for the rename-aside path), and the next
    save leaves no hidden ``.m.old-*`` behind."""
    path = str(tmp_path / "m")
    save_model(SoftmaxModel(np.full((3, 4), 1.0), np.zeros(3), ["a", "b", "c"]), path)
    run = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, path, step, "1" if atomic else "0"],
                         capture_output=True, text=True, timeout=120, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 17, run.stderr
    value = load_model(path).coef[0, 0]
    assert value in (1.0, 2.0)
    assert value == (2.0 if step in ("exchanged", "renamed-in", "published") else 1.0)
    save_model(SoftmaxModel(np.full((3, 4), 3.0), np.zeros(3), ["a", "b", "c"]), path, overwrite=True)
    assert load_model(path).coef[0, 0] == 3.0
    assert not [n for n in os.listdir(tmp_path) if ".old-" in n]


@pytest.mark.parametrize("atomic", [True, False])
def test_overwrite_false_is_checked_again_at_publish(tmp_path, monkeypatch, atomic):
    """A model published by another job while this one ran is not replaced silently."""
    monkeypatch.setattr(publish, "_use_renameat2", atomic)
    path = str(tmp_path / "m")
    with pytest.raises(InputError) as info:
        with storage.atomic_directory(path, overwrite=False, what="model directory") as local:
            Path(local, "mine.txt").write_text("mine")
            save_model(_model(), path)  # the other job
    assert "\n" not in str(info.value) and "published by another job" in str(info.value)
    assert load_model(path).classes == ["a", "b", "c"] and os.listdir(tmp_path) == ["m"]


def test_an_error_in_the_rename_in_puts_the_old_model_back(tmp_path, monkeypatch):
    monkeypatch.setattr(publish, "_use_renameat2", False)
    path = str(tmp_path / "m")
    save_model(_model(seed=1), path)
    rename = LocalStorage.rename

    def failing(self, source, target):
        if ".tmp-" in source:
            raise OSError(f"rename {source}: simulated I/O error")
        rename(self, source, target)

    monkeypatch.setattr(LocalStorage, "rename", failing)
    with pytest.raises(OSError, match="simulated"):
        save_model(_model(seed=2), path, overwrite=True)
    np.testing.assert_array_equal(load_model(path).coef, _model(seed=1).coef)
    assert os.listdir(tmp_path) == ["m"]


def test_viewfs_replacement_recovers_and_rolls_back(spark, store, monkeypatch):
    """The Hadoop path (rename aside, rename in): a crash between the renames is restored by
    load_model and cleaned by the next save; an error in the rename-in rolls back; overwrite=False
    is checked again at publish."""
    root, target = store
    uri = storage.join(root, "m")
    save_model(_model(seed=1), uri)
    os.rename(target / "m", target / ".m.old-0123456789ab")  # killed between the two renames
    (target / ".m.tmp-ba9876543210").mkdir()
    np.testing.assert_array_equal(load_model(uri).coef, _model(seed=1).coef)
    assert "m" in visible(target)
    (target / ".m.old-aaaaaaaaaaaa").mkdir()  # killed after the rename-in
    save_model(_model(seed=2), uri, overwrite=True)
    assert not [n for n in visible(target) if ".old-" in n]

    rename = HadoopStorage.rename

    def failing(self, source, target_uri):
        if ".tmp-" in source:
            raise OSError(f"rename {source}: simulated")
        rename(self, source, target_uri)

    monkeypatch.setattr(HadoopStorage, "rename", failing)
    with pytest.raises(OSError, match="simulated"):
        save_model(_model(seed=3), uri, overwrite=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_model(uri).coef, _model(seed=2).coef)
    with pytest.raises(InputError, match="published by another job"):
        with storage.atomic_directory(storage.join(root, "n"), what="model directory") as local:
            Path(local, "x").write_text("x")
            save_model(_model(seed=4), storage.join(root, "n"))
    np.testing.assert_array_equal(load_model(storage.join(root, "n")).coef, _model(seed=4).coef)


def test_local_model_and_checkpoint_directories_are_private_under_umask_000(tmp_path):
    old = os.umask(0)
    try:
        save_model(_model(), str(tmp_path / "m"))
        ck = save_checkpoint(str(tmp_path / "ck"), 1, {"theta": np.zeros(2)}, {}, [], "run")
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o700
    assert Path(ck).stat().st_mode & 0o777 == 0o700
