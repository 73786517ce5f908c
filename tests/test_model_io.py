"""The model directory format (softmax_spark.io.model_io): exact round trips, refusal of tampered
directories with ModelFormatError, no unpickling ever, atomic overwrite rules. No Spark here."""

import json
import os
import pickle

import numpy as np
import pytest

from softmax_spark import InputError, ModelFormatError, load_model, save_model
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.io.model_io import FORMAT, FORMAT_VERSION


def make_model(classes=(0, 1, 2), n_features=4, seed=0, history=None, metadata=None):
    rng = np.random.default_rng(seed)
    C = len(classes)
    return SoftmaxModel(
        rng.normal(size=(C, n_features)) * 10.0 ** rng.integers(-5, 5, size=(C, n_features)),
        rng.normal(size=C),
        list(classes),
        history=[] if history is None else history,
        metadata={} if metadata is None else metadata,
    )


FULL_METADATA = {
    "l2": 0.001,
    "fit_intercept": True,
    "options": {"optimizer": "lbfgs", "max_iter": 100, "tol": 1e-9, "classes": None, "nested": {"a": [1, 2]}},
    "data_summary": {"n_rows": 1234, "col_mean": [0.1, 0.2, 0.30000000000000004, -1e-300]},
}

HISTORY = [
    {"iteration": 1, "objective": 1.0986122886681098, "grad_norm": 0.1 + 0.2, "seconds": 1e-7},
    {"iteration": 2, "objective": 0.6931471805599453, "grad_norm": 5e-324, "learning_rate": None},
]


def assert_same_model(a: SoftmaxModel, b: SoftmaxModel):
    assert a.coef.dtype == b.coef.dtype == np.float64
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.intercept, b.intercept)
    assert a.classes == b.classes
    assert [type(c) for c in a.classes] == [type(c) for c in b.classes]
    assert a.history == b.history
    assert a.metadata == b.metadata


# -- round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "classes",
    [(0, 1, 2), (-3, 7), ("cat", "dog", "émeu", "with space"), (0.5, 1.5, 2.5)],
    ids=["int", "int-binary", "str", "float"],
)
def test_round_trip_is_exact(tmp_path, classes):
    """save then load gives bit-identical coef and intercept, the same classes (same Python types:
    int stays int, str stays str), the same history and metadata."""
    model = make_model(classes, history=HISTORY, metadata=FULL_METADATA)
    path = str(tmp_path / "model")
    save_model(model, path)
    loaded = load_model(path)
    assert_same_model(loaded, model)
    X = np.random.default_rng(1).normal(size=(10, model.n_features))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_round_trip_training_metadata(tmp_path):
    """Metadata shaped like the trainer's (the four documented keys plus a top-level stop_reason)
    round-trips exactly; the extra keys are kept under metadata.json's "extra"."""
    metadata = {**FULL_METADATA, "stop_reason": "relative objective change ≤ tol", "note": [1, {"a": None}]}
    model = make_model(history=HISTORY, metadata=metadata)
    path = tmp_path / "model"
    save_model(model, str(path))
    assert_same_model(load_model(str(path)), model)
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["extra"] == {"stop_reason": "relative objective change ≤ tol", "note": [1, {"a": None}]}


def test_hand_built_model_metadata_defaults(tmp_path):
    """A hand-built model (empty metadata) loads with the documented metadata keys at their
    defaults; a directory written before "extra" existed still loads."""
    path = tmp_path / "model"
    save_model(make_model(), str(path))
    assert load_model(str(path)).metadata == {"l2": None, "fit_intercept": True, "options": {}, "data_summary": {}}
    rewrite_meta(path, extra=KeyError)
    assert load_model(str(path)).metadata == {"l2": None, "fit_intercept": True, "options": {}, "data_summary": {}}


def test_round_trip_numpy_typed_inputs(tmp_path):
    """numpy scalar classes and numpy values in history/metadata are written as plain JSON values
    and come back as the equal Python values."""
    model = SoftmaxModel(
        np.arange(6.0).reshape(2, 3), np.array([0.25, -0.25]), [np.int64(3), np.int64(8)],
        history=[{"iteration": np.int64(1), "objective": np.float64(0.5), "arr": np.array([1.0, 2.0])}],
        metadata={"l2": np.float64(0.1), "fit_intercept": True, "options": {}, "data_summary": {"x": np.int32(4)}},
    )
    path = str(tmp_path / "m")
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.classes == [3, 8] and all(type(c) is int for c in loaded.classes)
    assert loaded.history == [{"iteration": 1, "objective": 0.5, "arr": [1.0, 2.0]}]
    assert loaded.metadata == {"l2": 0.1, "fit_intercept": True, "options": {}, "data_summary": {"x": 4}}
    np.testing.assert_array_equal(loaded.coef, model.coef)


def test_directory_layout(tmp_path):
    """The directory holds metadata.json (format, format_version, classes, shapes), coef.npy and
    intercept.npy (float64, plain .npy), history.json — and nothing temporary is left beside it."""
    model = make_model(("a", "b"), n_features=3, history=HISTORY, metadata=FULL_METADATA)
    path = tmp_path / "model"
    save_model(model, str(path))
    assert sorted(os.listdir(path)) == ["coef.npy", "history.json", "intercept.npy", "metadata.json"]
    assert os.listdir(tmp_path) == ["model"]
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["format"] == FORMAT and meta["format_version"] == FORMAT_VERSION == 1
    assert meta["classes"] == ["a", "b"] and meta["n_classes"] == 2 and meta["n_features"] == 3
    coef = np.load(path / "coef.npy", allow_pickle=False)
    assert coef.dtype == np.float64 and coef.shape == (2, 3)


def test_missing_history_means_empty(tmp_path):
    """A directory without history.json loads with an empty history."""
    path = tmp_path / "model"
    save_model(make_model(history=HISTORY), str(path))
    os.remove(path / "history.json")
    assert load_model(str(path)).history == []


# -- refusal of tampered directories --------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model"
    save_model(make_model((0, 1, 2), n_features=4, history=HISTORY, metadata=FULL_METADATA), str(path))
    return path


def rewrite_meta(path, **changes):
    meta = json.loads((path / "metadata.json").read_text())
    for k, v in changes.items():
        if v is KeyError:
            meta.pop(k)
        else:
            meta[k] = v
    (path / "metadata.json").write_text(json.dumps(meta))


class _Payload:
    """Unpickling this creates a marker directory: the proof that a loader did unpickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


TAMPERS = {
    "coef-wrong-shape": lambda p: np.save(p / "coef.npy", np.zeros((3, 5))),
    "coef-1d": lambda p: np.save(p / "coef.npy", np.zeros(12)),
    "intercept-wrong-shape": lambda p: np.save(p / "intercept.npy", np.zeros(4)),
    "coef-nan": lambda p: np.save(p / "coef.npy", np.where(np.eye(3, 4) > 0, np.nan, 1.0)),
    "intercept-inf": lambda p: np.save(p / "intercept.npy", np.array([0.0, np.inf, 1.0])),
    "coef-float32": lambda p: np.save(p / "coef.npy", np.zeros((3, 4), dtype=np.float32)),
    "coef-int": lambda p: np.save(p / "coef.npy", np.zeros((3, 4), dtype=np.int64)),
    "coef-object-dtype": lambda p: np.save(
        p / "coef.npy", np.array([[1.0, "x", None, 2]] * 3, dtype=object), allow_pickle=True),
    "coef-garbage": lambda p: (p / "coef.npy").write_bytes(b"\x00\xffnot a numpy file at all\x13\x37" * 5),
    "coef-truncated": lambda p: (p / "coef.npy").write_bytes((p / "coef.npy").read_bytes()[:90]),
    "coef-empty-file": lambda p: (p / "coef.npy").write_bytes(b""),
    "coef-missing": lambda p: os.remove(p / "coef.npy"),
    "coef-is-directory": lambda p: (os.remove(p / "coef.npy"), os.mkdir(p / "coef.npy")),
    "intercept-missing": lambda p: os.remove(p / "intercept.npy"),
    "coef-is-npz": lambda p: (np.savez(p / "tmp.npz", a=np.zeros((3, 4))), os.replace(p / "tmp.npz", p / "coef.npy")),
    "metadata-missing": lambda p: os.remove(p / "metadata.json"),
    "metadata-garbage": lambda p: (p / "metadata.json").write_bytes(b"\xff\xfe{{{ not json"),
    "metadata-not-object": lambda p: (p / "metadata.json").write_text("[1, 2, 3]"),
    "format-version-2": lambda p: rewrite_meta(p, format_version=2),
    "format-version-string": lambda p: rewrite_meta(p, format_version="1"),
    "format-version-missing": lambda p: rewrite_meta(p, format_version=KeyError),
    "format-wrong": lambda p: rewrite_meta(p, format="someone_else.model"),
    "classes-count-mismatch": lambda p: rewrite_meta(p, classes=[0, 1]),
    "n-features-mismatch": lambda p: rewrite_meta(p, n_features=5),
    "n-classes-not-int": lambda p: rewrite_meta(p, n_classes="3"),
    "duplicate-classes": lambda p: rewrite_meta(p, classes=[0, 1, 1]),
    "history-garbage": lambda p: (p / "history.json").write_text("{not json"),
    "extra-not-object": lambda p: rewrite_meta(p, extra=[1, 2]),
    # issue 24 item 7: a TypeError, a reader blocked forever, an allocation the files cannot back
    "classes-nested-lists": lambda p: rewrite_meta(p, classes=[[0], [1], [2]]),
    "classes-objects": lambda p: rewrite_meta(p, classes=[{"a": 0}, {"b": 1}, {"c": 2}]),
    "coef-is-fifo": lambda p: (os.remove(p / "coef.npy"), os.mkfifo(p / "coef.npy")),
    "metadata-is-fifo": lambda p: (os.remove(p / "metadata.json"), os.mkfifo(p / "metadata.json")),
    "n-features-declared-huge": lambda p: rewrite_meta(p, n_features=2**40),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampered_directory_is_refused(saved, tamper):
    """A tampered model directory (wrong shape/dtype, NaN or inf inside, object-dtype .npy that
    would need pickle, garbage or truncated bytes, unknown format_version, missing files, ...) is
    refused with ModelFormatError — an InputError — naming the directory."""
    TAMPERS[tamper](saved)
    with pytest.raises(ModelFormatError) as info:
        load_model(str(saved))
    assert isinstance(info.value, InputError)
    assert str(saved) in str(info.value)


def _open_paths():
    fds = "/proc/self/fd"
    out = set()
    for fd in os.listdir(fds):
        try:
            out.add(os.readlink(os.path.join(fds, fd)))
        except OSError:
            pass
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
def test_npz_instead_of_npy_leaks_no_file_handle(saved):
    """A zip (.npz) in place of coef.npy is refused and the file is closed at once — even while
    the caller still holds the error (its traceback keeps the loader's frame alive)."""
    TAMPERS["coef-is-npz"](saved)
    coef_path = os.path.realpath(saved / "coef.npy")
    with pytest.raises(ModelFormatError) as info:
        load_model(str(saved))
    assert info.value.__traceback__ is not None
    assert coef_path not in _open_paths()


def test_unknown_format_version_message(saved):
    """The message for an unknown format_version names that version."""
    rewrite_meta(saved, format_version=99)
    with pytest.raises(ModelFormatError, match="format_version 99"):
        load_model(str(saved))


def test_not_a_directory_is_refused(tmp_path):
    """A path that is a regular file, or that does not exist, is refused with ModelFormatError."""
    f = tmp_path / "file"
    f.write_text("hello")
    with pytest.raises(ModelFormatError, match="not a directory"):
        load_model(str(f))
    with pytest.raises(ModelFormatError):
        load_model(str(tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFormatError, match="missing"):
        load_model(str(empty))


@pytest.mark.parametrize("target", ["coef.npy", "intercept.npy"])
def test_loading_never_unpickles(saved, tmp_path, target, monkeypatch):
    """An .npy holding a pickled object whose unpickling would run code (here: create a marker
    directory) is refused with ModelFormatError and the code never runs; pickle.load/loads are not
    called at all, neither for the malicious directory nor for a valid one."""
    marker = tmp_path / "unpickled-marker"
    shape = (3, 4) if target == "coef.npy" else (3,)
    evil = np.empty(shape, dtype=object)
    evil.fill(_Payload(str(marker)))
    np.save(saved / target, evil, allow_pickle=True)
    # sanity: the payload works when unpickling *is* allowed
    probe = tmp_path / "probe.npy"
    evil_probe = np.empty(1, dtype=object)
    evil_probe[0] = _Payload(str(tmp_path / "probe-marker"))
    np.save(probe, evil_probe, allow_pickle=True)
    np.load(probe, allow_pickle=True)
    assert (tmp_path / "probe-marker").is_dir()

    def forbidden(*args, **kwargs):
        raise AssertionError("load_model must never unpickle")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    with pytest.raises(ModelFormatError):
        load_model(str(saved))
    assert not marker.exists()
    # a valid directory loads without touching pickle either
    good = tmp_path / "good"
    save_model(make_model(), str(good))
    load_model(str(good))


def test_raw_pickle_file_is_refused(saved, tmp_path):
    """A coef.npy that is a bare pickle stream (not .npy) is refused without being unpickled."""
    marker = tmp_path / "marker2"
    (saved / "coef.npy").write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(ModelFormatError):
        load_model(str(saved))
    assert not marker.exists()


# -- overwrite rules ------------------------------------------------------------------------------
def test_save_to_existing_directory_needs_overwrite(tmp_path):
    """Saving to an existing path without overwrite raises InputError and leaves it untouched;
    with overwrite=True the directory is replaced (old files gone) and holds the new model."""
    path = tmp_path / "model"
    old = make_model(("x", "y"), seed=1, history=HISTORY, metadata=FULL_METADATA)
    save_model(old, str(path))
    (path / "stale.txt").write_text("from an older run")
    new = make_model((0, 1, 2, 3), n_features=2, seed=2)

    with pytest.raises(InputError, match="already exists"):
        save_model(new, str(path))
    assert_same_model(load_model(str(path)), old)
    assert (path / "stale.txt").exists()

    save_model(new, str(path), overwrite=True)
    assert not (path / "stale.txt").exists()
    loaded = load_model(str(path))
    np.testing.assert_array_equal(loaded.coef, new.coef)
    assert loaded.classes == [0, 1, 2, 3]
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no temporary or old siblings left

    new2 = make_model(("p", "q"), seed=3)
    save_model(new2, str(path), overwrite=True)
    assert load_model(str(path)).classes == ["p", "q"]


def test_existing_regular_file_needs_overwrite(tmp_path):
    """A regular file at the target path is not silently replaced without overwrite."""
    path = tmp_path / "model"
    path.write_text("precious")
    with pytest.raises(InputError):
        save_model(make_model(), str(path))
    assert path.read_text() == "precious"


def test_failed_save_leaves_nothing(tmp_path):
    """If writing fails half-way (an extra writer raises), no directory — and no temporary
    sibling — is left behind, and an existing model is kept intact."""
    path = tmp_path / "model"

    def boom(tmp):
        with open(os.path.join(tmp, "partial"), "w") as f:
            f.write("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_model(make_model(), str(path), extra_writer=boom)
    assert os.listdir(tmp_path) == []

    old = make_model(seed=5, history=HISTORY, metadata=FULL_METADATA)
    save_model(old, str(path))
    with pytest.raises(RuntimeError):
        save_model(make_model(seed=6), str(path), overwrite=True, extra_writer=boom)
    assert_same_model(load_model(str(path)), old)
    assert os.listdir(tmp_path) == ["model"]


def test_extra_writer_files_are_published(tmp_path):
    """Files added by extra_writer land inside the published directory (e.g. the MLlib copy)."""
    path = tmp_path / "model"

    def extra(tmp):
        os.makedirs(os.path.join(tmp, "mllib"))

    save_model(make_model(), str(path), extra_writer=extra)
    assert (path / "mllib").is_dir()
    load_model(str(path))


# -- the format registry (model_io.FORMATS) -----------------------------------------------------
def _spark_ml_dir(path, model: SoftmaxModel, cls="softmax_spark.ml.SoftmaxRegressionModel", version=1):
    """A saved SoftmaxRegressionModel directory as DefaultParamsWriter + the Model's writer lay it
    out (io.spark_ml_io's docstring), written with pyarrow: no Spark needed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(path / "metadata")
    os.makedirs(path / "data")
    meta = {"class": cls, "uid": "SoftmaxRegression_x", "paramMap": {"labelCol": "name"},
            "defaultParamMap": {"featuresCol": "features", "labelCol": "label"},
            "softmaxSparkFormat": "softmax_spark.ml.SoftmaxRegressionModel", "softmaxSparkFormatVersion": version}
    (path / "metadata" / "part-00000").write_text(json.dumps(meta) + "\n")
    (path / "metadata" / "_SUCCESS").write_text("")
    pq.write_table(pa.table({
        "numClasses": pa.array([model.n_classes], pa.int32()), "numFeatures": pa.array([model.n_features], pa.int32()),
        "isBinomial": pa.array([False]), "coefficients": pa.array([model.coef.ravel()], pa.list_(pa.float64())),
        "intercept": pa.array([model.intercept], pa.list_(pa.float64())),
        "classes": pa.array([json.dumps(list(model.classes))]), "history": pa.array([json.dumps(HISTORY)]),
        "stopReason": pa.array(["gtol"]), "certificate": pa.array(["null"])}), path / "data" / "part-00000.parquet")


def test_the_registry_detects_reads_and_warm_starts_every_format(tmp_path):
    """One registry tells ours, a saved Spark ML model and an MLlib model apart, reads each, and a
    warm start accepts all three (a Spark ML model's rows matched to the data's class order)."""
    from softmax_spark.io import model_io
    from softmax_spark.io.mllib_io import write_mllib_model

    assert list(model_io.FORMATS) == ["softmax_spark", "ml", "mllib"]
    model = make_model(("a", "b", "c"))
    save_model(model, str(tmp_path / "ours"))
    _spark_ml_dir(tmp_path / "ml", model)
    write_mllib_model(make_model((0, 1, 2)), str(tmp_path / "mllib"))
    assert [model_io.model_dir_kind(str(tmp_path / d)) for d in ("ours", "ml", "mllib")] == ["softmax_spark", "ml", "mllib"]
    assert model_io.is_mllib_model_dir(str(tmp_path / "mllib")) and not model_io.is_mllib_model_dir(str(tmp_path / "ml"))
    spark_ml = model_io.read_model(str(tmp_path / "ml"))
    np.testing.assert_array_equal(spark_ml.coef, model.coef)
    assert spark_ml.classes == ["a", "b", "c"] and spark_ml.history == HISTORY and spark_ml.metadata["stop_reason"] == "gtol"
    warm = model_io.load_any_model(str(tmp_path / "ml"), classes=["c", "a", "b"], n_features=4)
    np.testing.assert_array_equal(warm.coef, model.coef[[2, 0, 1]])
    scoring = model_io.load_scoring_model(str(tmp_path / "ml"))
    assert scoring.metadata["options"]["label_col"] == "name"  # the saved Param, so evaluate defaults to it
    with pytest.raises(InputError, match="--model-classes is for an MLlib model"):
        model_io.load_scoring_model(str(tmp_path / "ml"), model_classes=["x", "y", "z"])


def test_the_registry_refuses_other_spark_ml_classes_and_versions(tmp_path):
    from softmax_spark.io import model_io

    _spark_ml_dir(tmp_path / "other", make_model(), cls="org.apache.spark.ml.classification.NaiveBayesModel")
    with pytest.raises(ModelFormatError, match="holds a saved org.apache.spark.ml.classification.NaiveBayesModel"):
        model_io.read_model(str(tmp_path / "other"))
    assert not model_io.is_mllib_model_dir(str(tmp_path / "other"))
    _spark_ml_dir(tmp_path / "v2", make_model(), version=2)
    with pytest.raises(ModelFormatError, match="format version 2"):
        model_io.read_model(str(tmp_path / "v2"))
    with pytest.raises(ValueError, match="clashes"):
        model_io.register(model_io.ModelFormat("copy", "a copy", read=load_model, marker="metadata.json"))
    assert list(model_io.FORMATS) == ["softmax_spark", "ml", "mllib"]
