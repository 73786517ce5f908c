"""MLlib LogisticRegressionModel directories written and read without Spark (softmax_spark.io.mllib_io)."""

import glob
import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from softmax_spark.core.errors import ModelFormatError
from softmax_spark.io.mllib_io import read_mllib_model, write_mllib_model
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.io.model_io import save_model


def _features_df(spark, X, y=None):
    from pyspark.ml.linalg import Vectors

    if y is None:
        return spark.createDataFrame([(Vectors.dense(x),) for x in X], ["features"])
    return spark.createDataFrame(
        [(Vectors.dense(x), float(label)) for x, label in zip(X, y)], ["features", "label"]
    )


def _columns(df, *names):
    """The named columns of the collected rows (one Spark job): vectors as ndarrays of shape
    (n_samples, size), scalars of shape (n_samples,)."""
    rows = df.select(*names).collect()
    return [
        np.array([row[name].toArray() if hasattr(row[name], "toArray") else row[name] for row in rows])
        for name in names
    ]


def _random_model(rng, n_classes, n_features, fit_intercept, classes=None):
    coef = rng.normal(scale=2.0, size=(n_classes, n_features))
    intercept = rng.normal(size=n_classes) if fit_intercept else np.zeros(n_classes)
    return SoftmaxModel(
        coef,
        intercept,
        classes if classes is not None else [f"class-{c}" for c in range(n_classes)],
        metadata={"l2": 0.125, "fit_intercept": fit_intercept},
    )


@pytest.fixture(scope="module")
def training_data():
    """40 samples, 6 features, 3 classes; features 3..5 are noise, so L1 zeroes coefficients."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 6))
    true_coef = np.zeros((3, 6))
    true_coef[0, 0], true_coef[1, 1], true_coef[2, 2] = 3.0, -3.0, 2.0
    y = np.argmax(X @ true_coef.T + rng.gumbel(size=(40, 3)), axis=1)
    return X, y


# -- our write → MLlib load -----------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_written_model_loads_in_mllib_with_same_probabilities(spark, rng, tmp_path, n_classes, fit_intercept):
    """Our write → LogisticRegressionModel.load → transform: probability equals predict_proba and
    rawPrediction equals the logits (1e-12), prediction is the class index, and the params say
    multinomial, regParam = 2·l2, no standardization."""
    from pyspark.ml.classification import LogisticRegressionModel

    model = _random_model(rng, n_classes, 5, fit_intercept)
    path = str(tmp_path / "mllib")
    write_mllib_model(model, path)

    mllib = LogisticRegressionModel.load(path)
    assert (mllib.numClasses, mllib.numFeatures) == (n_classes, 5)
    assert mllib.getFamily() == "multinomial"
    assert mllib.getFitIntercept() is fit_intercept
    assert mllib.getRegParam() == pytest.approx(0.25)
    assert mllib.getStandardization() is False
    assert mllib.getElasticNetParam() == 0.0

    X = rng.normal(scale=3.0, size=(12, 5))
    out = mllib.transform(_features_df(spark, X))
    probability, raw, predicted = _columns(out, "probability", "rawPrediction", "prediction")
    np.testing.assert_allclose(probability, model.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(raw, model.decision_function(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(predicted, model.decision_function(X).argmax(axis=1))


def test_existing_path_is_refused(rng, tmp_path):
    """write_mllib_model never replaces an existing path (like MLlib's save without overwrite)."""
    from softmax_spark.core.errors import InputError

    (tmp_path / "taken").mkdir()
    with pytest.raises(InputError, match="already exists"):
        write_mllib_model(_random_model(rng, 2, 3, True), str(tmp_path / "taken"))


# -- MLlib fit → save → our read ------------------------------------------------------------------

MLLIB_FITS = {
    "multinomial": dict(family="multinomial", regParam=0.01),
    "multinomial-no-intercept": dict(family="multinomial", fitIntercept=False),  # sparse intercepts
    "binomial": dict(family="binomial", regParam=0.01),
    "l1-sparse": dict(family="multinomial", regParam=0.1, elasticNetParam=1.0),
}


@pytest.mark.parametrize("name", list(MLLIB_FITS))
def test_mllib_saved_model_reads_with_same_probabilities(spark, tmp_path, training_data, name):
    """MLlib fit → save → read_mllib_model: predict_proba equals MLlib's probability column (1e-9),
    classes are the label indices 0..C−1, and a binomial model becomes rows [0, w], [0, b]."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.linalg import SparseMatrix

    X, y = training_data
    if MLLIB_FITS[name]["family"] == "binomial":
        y = (y == 2).astype(int)
    train = _features_df(spark, X, y)
    fitted = LogisticRegression(maxIter=10, **MLLIB_FITS[name]).fit(train)
    if name == "l1-sparse":  # MLlib stores a SparseMatrix when that is smaller
        assert isinstance(fitted.coefficientMatrix, SparseMatrix)
        assert 0 < fitted.coefficientMatrix.values.size < fitted.coefficientMatrix.toArray().size
    path = str(tmp_path / "mllib")
    fitted.save(path)

    model = read_mllib_model(path)
    n_classes = 2 if name == "binomial" else 3
    assert model.classes == list(range(n_classes))
    assert model.coef.shape == (n_classes, 6)
    assert model.metadata["fit_intercept"] is (name != "multinomial-no-intercept")
    if name == "binomial":
        np.testing.assert_array_equal(model.coef[0], 0.0)
        np.testing.assert_array_equal(model.coef[1], fitted.coefficients.toArray())
        np.testing.assert_array_equal(model.intercept, [0.0, fitted.intercept])
    else:
        np.testing.assert_array_equal(model.coef, fitted.coefficientMatrix.toArray())
        np.testing.assert_array_equal(model.intercept, fitted.interceptVector.toArray())

    expected = _columns(fitted.transform(train), "probability")[0]
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    "encoding", ["dense-column-major", "dense-row-major", "sparse-csc", "sparse-csr"]
)
def test_every_matrix_encoding_is_densified_as_spark_reads_it(spark, tmp_path, encoding):
    """A data row written by Spark itself with coefficientMatrix in each MatrixUDT encoding (dense
    column-/row-major, sparse CSC / CSR via isTransposed) reads as the same W that Spark's own
    LogisticRegressionModel.load sees."""
    from pyspark.ml.classification import LogisticRegressionModel
    from pyspark.ml.linalg import DenseMatrix, MatrixUDT, SparseMatrix, Vectors, VectorUDT
    from pyspark.sql.types import BooleanType, IntegerType, StructField, StructType

    coef = np.array([[0.0, 1.5, 0.0, -2.0], [3.0, 0.0, 0.0, 0.0], [0.0, 0.0, -0.5, 4.0]])  # (3, 4)
    if encoding == "dense-column-major":
        matrix = DenseMatrix(3, 4, coef.ravel(order="F").tolist(), False)
    elif encoding == "dense-row-major":
        matrix = DenseMatrix(3, 4, coef.ravel(order="C").tolist(), True)
    else:
        major = coef if encoding == "sparse-csr" else coef.T  # compressed axis first
        pointers = np.concatenate([[0], np.cumsum((major != 0).sum(axis=1))]).tolist()
        minor = [int(j) for row in major for j in np.flatnonzero(row)]
        values = [float(v) for v in major[major != 0]]
        matrix = SparseMatrix(3, 4, pointers, minor, values, encoding == "sparse-csr")
    intercept = [0.25, -0.5, 0.0]

    path = str(tmp_path / "mllib")
    write_mllib_model(SoftmaxModel(np.zeros((3, 4)), np.zeros(3), [0, 1, 2]), path)  # metadata
    shutil.rmtree(os.path.join(path, "data"))
    schema = StructType(
        [
            StructField("numClasses", IntegerType(), False),
            StructField("numFeatures", IntegerType(), False),
            StructField("interceptVector", VectorUDT()),
            StructField("coefficientMatrix", MatrixUDT()),
            StructField("isMultinomial", BooleanType(), False),
        ]
    )
    row = (3, 4, Vectors.dense(intercept), matrix, True)
    spark.createDataFrame([row], schema).coalesce(1).write.parquet(os.path.join(path, "data"))

    np.testing.assert_array_equal(LogisticRegressionModel.load(path).coefficientMatrix.toArray(), coef)
    model = read_mllib_model(path)
    np.testing.assert_array_equal(model.coef, coef)
    np.testing.assert_array_equal(model.intercept, intercept)


def test_single_label_mllib_model_is_refused(spark, tmp_path, training_data):
    """An MLlib fit on one label value (infinite intercept) → ModelFormatError, not a NaN model."""
    from pyspark.ml.classification import LogisticRegression

    X, _ = training_data
    path = str(tmp_path / "mllib")
    LogisticRegression(family="multinomial").fit(_features_df(spark, X, np.ones(len(X)))).save(path)
    with pytest.raises(ModelFormatError, match="infinite"):
        read_mllib_model(path)


# -- our write → our read --------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 5])
def test_round_trip_is_exact(rng, tmp_path, n_classes):
    """write_mllib_model → read_mllib_model gives bit-identical coef and intercept, classes as
    indices 0..C−1, and fit_intercept / l2 back; extra empty part files and .crc files are ignored."""
    model = _random_model(rng, n_classes, 7, True, classes=[f"c{c}" for c in range(n_classes)])
    path = str(tmp_path / "mllib")
    write_mllib_model(model, path)
    data_dir = os.path.join(path, "data")
    empty = pq.ParquetFile(glob.glob(os.path.join(data_dir, "part-*"))[0]).read().slice(0, 0)
    pq.write_table(empty, os.path.join(data_dir, "part-00001-empty.snappy.parquet"))
    (tmp_path / "mllib" / "data" / ".part-00001-empty.snappy.parquet.crc").write_bytes(b"crc")

    back = read_mllib_model(path)
    assert np.array_equal(back.coef, model.coef)
    assert np.array_equal(back.intercept, model.intercept)
    assert back.classes == list(range(n_classes))
    assert back.metadata["fit_intercept"] is True
    assert back.metadata["l2"] == 0.125


def test_written_files_follow_the_mllib_layout(rng, tmp_path):
    """The directory holds metadata/ (one JSON line naming LogisticRegressionModel) and data/ (one
    Parquet row whose footer carries the Spark schema with VectorUDT and MatrixUDT)."""
    path = tmp_path / "mllib"
    write_mllib_model(_random_model(rng, 3, 2, True), str(path))
    assert sorted(os.listdir(path)) == ["data", "metadata"]
    (meta_file,) = glob.glob(str(path / "metadata" / "part-*"))
    meta = json.loads(open(meta_file).read())
    assert meta["class"] == "org.apache.spark.ml.classification.LogisticRegressionModel"
    assert meta["paramMap"]["family"] == "multinomial"
    (data_file,) = glob.glob(str(path / "data" / "part-*.parquet"))
    footer = pq.ParquetFile(data_file).metadata.metadata
    spark_schema = json.loads(footer[b"org.apache.spark.sql.parquet.row.metadata"])
    udts = {f["name"]: f["type"]["class"] for f in spark_schema["fields"] if isinstance(f["type"], dict)}
    assert udts == {
        "interceptVector": "org.apache.spark.ml.linalg.VectorUDT",
        "coefficientMatrix": "org.apache.spark.ml.linalg.MatrixUDT",
    }
    assert (path / "data" / "_SUCCESS").exists() and (path / "metadata" / "_SUCCESS").exists()


# -- not an MLlib LR model -------------------------------------------------------------------------


def _break_metadata_class(path):
    (meta_file,) = glob.glob(os.path.join(path, "metadata", "part-*"))
    meta = json.loads(open(meta_file).read())
    meta["class"] = "org.apache.spark.ml.regression.LinearRegressionModel"
    open(meta_file, "w").write(json.dumps(meta) + "\n")


def _replace_data(path, write):
    shutil.rmtree(os.path.join(path, "data"))
    os.makedirs(os.path.join(path, "data"))
    write(os.path.join(path, "data", "part-00000.snappy.parquet"))


BROKEN = {
    "missing directory": lambda path: shutil.rmtree(path),
    "empty directory": lambda path: [shutil.rmtree(path), os.makedirs(path)],
    "our own model directory": lambda path: [
        shutil.rmtree(path),
        save_model(SoftmaxModel(np.eye(2), None, [0, 1]), path),
    ],
    "another MLlib class": _break_metadata_class,
    "metadata not JSON": lambda path: [
        open(f, "w").write("not json\n") for f in glob.glob(os.path.join(path, "metadata", "part-*"))
    ],
    "no data directory": lambda path: shutil.rmtree(os.path.join(path, "data")),
    "data not Parquet": lambda path: _replace_data(path, lambda f: open(f, "wb").write(b"PAR1 garbage")),
    "data with other columns": lambda path: _replace_data(
        path, lambda f: pq.write_table(pa.table({"numClasses": [2], "weights": [1.0]}), f)
    ),
    "two data rows": lambda path: [
        shutil.copy(f, f + ".copy.parquet") for f in glob.glob(os.path.join(path, "data", "part-*"))
    ],
    "shape mismatch": lambda path: _replace_data(
        path,
        lambda f: pq.write_table(
            pq.read_table(glob.glob(os.path.join(path + ".ok", "data", "part-*"))[0]).set_column(
                1, "numFeatures", pa.array([9], pa.int32())
            ),
            f,
        ),
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_not_an_mllib_lr_model_is_a_model_format_error(rng, tmp_path, case):
    """Anything but an MLlib LogisticRegressionModel directory → ModelFormatError, one line naming
    the directory or file."""
    path = str(tmp_path / "mllib")
    model = _random_model(rng, 2, 3, True)
    write_mllib_model(model, path)
    write_mllib_model(model, path + ".ok")  # an intact copy for cases that edit a real file
    BROKEN[case](path)
    with pytest.raises(ModelFormatError) as info:
        read_mllib_model(path)
    message = str(info.value)
    assert "\n" not in message
    assert path in message


def _declaring_model(path, n_features, binomial=True):
    """An MLlib directory (a few KB) whose binomial sparse coefficient row declares ``n_features``
    features and holds one value, as issue 24 item 6 reproduced."""
    from softmax_spark.io import mllib_layout as mio

    write_mllib_model(_random_model(np.random.default_rng(0), 2, 3, True), path)
    coefficients = pa.StructArray.from_arrays(
        [pa.array([0], type=pa.int8()), pa.array([1], type=pa.int32()), pa.array([n_features], type=pa.int32()),
         mio.list_array(np.array([0, 1], dtype=np.int32), mio.INT_LIST),
         mio.list_array(np.array([0], dtype=np.int32), mio.INT_LIST),
         mio.list_array(np.array([1.0]), mio.DOUBLE_LIST), pa.array([True])],
        fields=mio.MATRIX_FIELDS)
    intercept = pa.StructArray.from_arrays(
        [pa.array([1], type=pa.int8()), pa.nulls(1, type=pa.int32()), pa.nulls(1, type=mio.INT_LIST),
         mio.list_array(np.array([0.5]), mio.DOUBLE_LIST)], fields=mio.VECTOR_FIELDS)
    table = pa.Table.from_arrays([pa.array([2], type=pa.int32()), pa.array([n_features], type=pa.int32()),
                                  intercept, coefficients, pa.array([not binomial])], schema=mio.DATA_SCHEMA)
    _replace_data(path, lambda f: pq.write_table(table, f))


@pytest.mark.parametrize("n_features", [30_000_000, 2**31 - 1])
def test_declared_sizes_are_bounded_by_the_files(tmp_path, n_features):
    """Issue 24 item 6: a few-KB directory declaring 30M (or 2³¹−1) features is refused with the
    one-line format error before any dense array is allocated (today: 458 MiB, or MemoryError)."""
    import resource

    path = str(tmp_path / "mllib")
    _declaring_model(path, n_features)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    assert size < 10_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelFormatError) as info:
        read_mllib_model(path)
    assert "\n" not in str(info.value) and path in str(info.value) and "declares" in str(info.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024  # KiB: no big array
    _declaring_model(str(tmp_path / "plausible"), 1000)  # the same sparse layout at a plausible size reads
    model = read_mllib_model(str(tmp_path / "plausible"))
    assert model.coef.shape == (2, 1000) and model.coef[1, 0] == 1.0
