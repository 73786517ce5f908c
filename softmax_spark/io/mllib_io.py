"""Spark MLlib ``LogisticRegressionModel`` directories, written and read without a SparkSession.

The layout, its constants and Arrow / Catalyst schemas: ``softmax_spark.io.mllib_layout``.

``path`` may be any ``softmax_spark.io.storage`` URI: the files are written into a local temporary
directory and published atomically; a remote directory is copied to a local temporary directory
before it is read.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from softmax_spark.io import storage
from softmax_spark.core.errors import InputError, ModelFormatError
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.core.penalty import L2Penalty
from softmax_spark.io.mllib_layout import (
    DATA_SCHEMA, DEFAULT_PARAMS, DOUBLE_LIST, INT_LIST, MATRIX_FIELDS, MLLIB_LR_MODEL_CLASS, SPARK_ROW_METADATA_KEY,
    SPARK_VERSION, VECTOR_FIELDS, catalyst_row_schema, list_array,
)

__all__ = ["write_mllib_model", "read_mllib_model"]

# Reading a model must not allocate what its files only declare: a sparse vector or matrix (and a
# binomial model's zero row) is expanded to a dense array of at most max(EXPAND_FLOOR_BYTES,
# EXPAND_FACTOR × the data file's size) bytes — a dense-stored model is never near the bound
# (its file holds 8 bytes a coefficient), a 4.6 KB file declaring 30M features is refused. The
# same bound applies to the Parquet data's declared uncompressed size.
EXPAND_FLOOR_BYTES = 64 << 20
EXPAND_FACTOR = 64

# -- paths and writing ------------------------------------------------------------------------------------


def _params(model: SoftmaxModel) -> dict:
    """The paramMap we set explicitly: the MLlib settings equivalent to our training objective."""
    fit_intercept = model.metadata.get("fit_intercept", True)
    fit_intercept = True if fit_intercept is None else bool(fit_intercept)
    params = {
        "elasticNetParam": 0.0,
        "family": "multinomial",
        "featuresCol": "features",
        # a hand-built model may carry intercepts although "fit_intercept" is False
        "fitIntercept": fit_intercept or bool(np.any(model.intercept != 0)),
        "labelCol": "label",
        "standardization": False,
    }
    penalty = L2Penalty.from_metadata(model.metadata)
    if penalty is not None:  # regParam = 2λ, elasticNetParam 0, standardization as trained
        params.update(penalty.mllib_params())
        l1 = float(model.metadata.get("l1") or 0.0)
        if l1 > 0:  # λ₁ = regParam·α, λ₂ = regParam·(1−α)/2 → regParam = λ₁ + 2λ₂, α = λ₁ / regParam
            reg = l1 + 2.0 * penalty.l2
            params.update(regParam=reg, elasticNetParam=l1 / reg)
    return dict(sorted(params.items()))


def _metadata_json(model: SoftmaxModel) -> str:
    metadata = {
        "class": MLLIB_LR_MODEL_CLASS,
        "timestamp": int(time.time() * 1000),
        "sparkVersion": SPARK_VERSION,
        "uid": "LogisticRegression_" + uuid.uuid4().hex[-12:],
        "paramMap": _params(model),
        "defaultParamMap": DEFAULT_PARAMS,
    }
    # MLlib's DoubleParam.jsonDecode needs a JSON float ("0.0"), IntParam an integer: json keeps
    # Python float/int apart, so the types above are what gets written.
    return json.dumps(metadata, separators=(",", ":"), allow_nan=False)



def _data_table(model: SoftmaxModel) -> pa.Table:
    """The single data row: multinomial form, dense intercepts (C,), dense row-major W (C, D)."""
    n_classes, n_features = model.coef.shape
    intercept = pa.StructArray.from_arrays(
        [
            pa.array([1], type=pa.int8()),
            pa.nulls(1, type=pa.int32()),
            pa.nulls(1, type=INT_LIST),
            list_array(model.intercept, DOUBLE_LIST),
        ],
        fields=VECTOR_FIELDS,
    )
    coefficients = pa.StructArray.from_arrays(
        [
            pa.array([1], type=pa.int8()),
            pa.array([n_classes], type=pa.int32()),
            pa.array([n_features], type=pa.int32()),
            pa.nulls(1, type=INT_LIST),
            pa.nulls(1, type=INT_LIST),
            list_array(np.ascontiguousarray(model.coef).reshape(-1), DOUBLE_LIST),
            pa.array([True]),  # values row-major, as MLlib stores its dense multinomial W
        ],
        fields=MATRIX_FIELDS,
    )
    return pa.Table.from_arrays(
        [
            pa.array([n_classes], type=pa.int32()),
            pa.array([n_features], type=pa.int32()),
            intercept,
            coefficients,
            pa.array([True]),
        ],
        schema=DATA_SCHEMA,
    )


def write_mllib_model(model: SoftmaxModel, path: str, spark=None) -> None:
    """Write ``model`` as an MLlib ``LogisticRegressionModel`` directory at ``path``.

    Pure Python (json + pyarrow), no SparkSession for a local ``path``; any other storage URI goes
    through ``spark`` (default: the active session). ``path`` must not exist (``InputError``);
    the directory is published atomically. Always the multinomial form (isMultinomial true, numClasses C,
    coefficientMatrix C × D, interceptVector of length C), so
    ``pyspark.ml.classification.LogisticRegressionModel.load(path).transform(df)`` gives
    ``model.predict_proba`` with class index k = ``model.classes[k]``.
    """
    if not (np.all(np.isfinite(model.coef)) and np.all(np.isfinite(model.intercept))):
        raise InputError(f"cannot write MLlib model {path}: the model has NaN or infinite coefficients")
    metadata_json = _metadata_json(model)
    table = _data_table(model)
    with storage.atomic_directory(path, overwrite=False, what="MLlib model directory", spark=spark) as tmp:
        job = uuid.uuid4()
        metadata_dir = os.path.join(tmp, "metadata")
        data_dir = os.path.join(tmp, "data")
        os.makedirs(metadata_dir)
        os.makedirs(data_dir)
        with open(os.path.join(metadata_dir, f"part-00000-{job}-c000.txt"), "w", encoding="utf-8") as f:
            f.write(metadata_json + "\n")
        data_file = os.path.join(data_dir, f"part-00000-{job}-c000.snappy.parquet")
        with pq.ParquetWriter(data_file, DATA_SCHEMA, compression="snappy", store_schema=False) as writer:
            writer.write_table(table)
            writer.add_key_value_metadata(
                {SPARK_ROW_METADATA_KEY: catalyst_row_schema(), "org.apache.spark.version": SPARK_VERSION}
            )
        for directory in (metadata_dir, data_dir):
            open(os.path.join(directory, "_SUCCESS"), "wb").close()


# -- reading ------------------------------------------------------------------------------------


def _part_files(directory: str, what: str) -> list:
    """The visible files of a Spark output directory (no _SUCCESS, no hidden .crc), sorted."""
    if not os.path.isdir(directory):
        raise ModelFormatError(f"{what}: {directory} is missing or not a directory")
    names = sorted(
        name
        for name in os.listdir(directory)
        if not name.startswith(("_", ".")) and os.path.isfile(os.path.join(directory, name))
    )
    if not names:
        raise ModelFormatError(f"{what}: {directory} has no part files")
    return [os.path.join(directory, name) for name in names]


def _read_metadata(path: str, what: str) -> dict:
    """The metadata JSON: the first line of the first non-empty part file, as Spark reads it."""
    for part in _part_files(os.path.join(path, "metadata"), what):
        try:
            with open(part, encoding="utf-8") as f:
                line = f.readline().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"{what}: {part} is not a readable text file ({exc})") from None
        if not line:
            continue
        try:
            meta = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ModelFormatError(f"{what}: {part} is not MLlib metadata JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("class") != MLLIB_LR_MODEL_CLASS:
            found = meta.get("class") if isinstance(meta, dict) else type(meta).__name__
            raise ModelFormatError(f"{what}: {part} describes {found!r}, expected class {MLLIB_LR_MODEL_CLASS}")
        return meta
    raise ModelFormatError(f"{what}: the part files in {os.path.join(path, 'metadata')} are empty")


def _spark_major_minor(meta: dict, what: str) -> tuple:
    version = meta.get("sparkVersion")
    try:
        major, minor = (int(v) for v in str(version).split(".")[:2])
    except ValueError:
        raise ModelFormatError(f"{what}: metadata sparkVersion {version!r} is not a Spark version") from None
    return major, minor


def _check_column(table: pa.Table, field: pa.Field, part: str, what: str) -> None:
    """The column is present and of the same kind as ``field`` (ints of any width)."""
    def same_kind(found: pa.DataType, expected: pa.DataType) -> bool:
        if pa.types.is_integer(expected):
            return pa.types.is_integer(found)
        if pa.types.is_floating(expected):
            return pa.types.is_floating(found)
        if pa.types.is_boolean(expected):
            return pa.types.is_boolean(found)
        if pa.types.is_list(expected):
            return (pa.types.is_list(found) or pa.types.is_large_list(found)) and same_kind(
                found.value_type, expected.value_type
            )
        if pa.types.is_struct(expected):
            if not pa.types.is_struct(found):
                return False
            children = {found.field(i).name: found.field(i).type for i in range(found.num_fields)}
            return all(
                expected.field(i).name in children
                and same_kind(children[expected.field(i).name], expected.field(i).type)
                for i in range(expected.num_fields)
            )
        return found.equals(expected)

    if field.name not in table.column_names:
        if field.name == "interceptVector" and "intercept" in table.column_names:
            raise ModelFormatError(f"{what}: {part} is in the Spark < 2.1 layout, which is not supported")
        raise ModelFormatError(
            f"{what}: {part} has no column {field.name!r}, expected columns {DATA_SCHEMA.names}"
        )
    found = table.schema.field(field.name).type
    if not same_kind(found, field.type):
        raise ModelFormatError(f"{what}: {part} column {field.name!r} is {found}, expected {field.type}")


def expansion_limit(file_bytes: int) -> int:
    """The most bytes a reader allocates for arrays read from a file of ``file_bytes`` bytes
    (``EXPAND_FLOOR_BYTES``, ``EXPAND_FACTOR``)."""
    return max(EXPAND_FLOOR_BYTES, EXPAND_FACTOR * int(file_bytes))


def _check_size(n_values: int, limit: int, where: str, declared: str) -> None:
    """Refuse (``ModelFormatError``) a dense array of ``n_values`` float64 above ``limit`` bytes."""
    if n_values * 8 > limit:
        raise ModelFormatError(
            f"{where}: declares {declared} ({n_values * 8 / 2**20:.1f} MiB dense), more than the file's size "
            f"allows ({limit / 2**20:.1f} MiB); the file is damaged or not an MLlib model"
        )


def _read_data_row(path: str, what: str) -> tuple:
    """(part file, the one data row): scalars as Python values, struct columns as dicts of
    scalars and ndarrays (None for null fields)."""
    rows = []
    for part in _part_files(os.path.join(path, "data"), what):
        try:
            parquet = pq.ParquetFile(part)
            declared = sum(parquet.metadata.row_group(g).total_byte_size for g in range(parquet.num_row_groups))
        except Exception as exc:  # not Parquet, truncated, unreadable
            raise ModelFormatError(f"{what}: {part} is not a readable Parquet file ({exc})") from None
        limit = expansion_limit(os.path.getsize(part))
        if declared > limit:
            raise ModelFormatError(f"{what}: {part} declares {declared} bytes of uncompressed data, more than "
                                   f"its size allows ({limit}); the file is damaged or not an MLlib model")
        try:
            table = parquet.read()
        except Exception as exc:  # not Parquet, truncated, unreadable
            raise ModelFormatError(f"{what}: {part} is not a readable Parquet file ({exc})") from None
        for field in DATA_SCHEMA:
            _check_column(table, field, part, what)
        rows.extend((part, table, i) for i in range(table.num_rows))
    if len(rows) != 1:
        raise ModelFormatError(f"{what}: {os.path.join(path, 'data')} holds {len(rows)} rows, expected 1")
    part, table, i = rows[0]
    row = {}
    for name in DATA_SCHEMA.names:
        column = table.column(name).combine_chunks()
        if pa.types.is_struct(column.type):
            row[name] = _struct_value(column, i, name, part, what)
        else:
            row[name] = column[i].as_py()
            if row[name] is None:
                raise ModelFormatError(f"{what}: {part} column {name!r} is null")
    return part, row


def _struct_value(column: pa.StructArray, i: int, name: str, part: str, what: str) -> dict:
    if not column[i].is_valid:
        raise ModelFormatError(f"{what}: {part} column {name!r} is null")
    value = {}
    for field, child in zip(column.type, column.flatten()):
        item = child[i]
        if not item.is_valid:
            value[field.name] = None
        elif isinstance(item, (pa.ListScalar, pa.LargeListScalar)):
            value[field.name] = item.values.to_numpy(zero_copy_only=False)
        else:
            value[field.name] = item.as_py()
    return value


def _dense_vector(vector: dict, where: str, limit: int) -> np.ndarray:
    """A VectorUDT value as ndarray of shape (size,); ``limit``: the most bytes it may take
    (``expansion_limit``)."""
    values = vector.get("values")
    if vector.get("type") == 1 and values is not None:
        return values.astype(np.float64)
    if vector.get("type") == 0 and values is not None and vector.get("indices") is not None:
        size, indices = vector.get("size"), vector["indices"].astype(np.int64)
        if (
            size is None
            or size < 0
            or len(indices) != len(values)
            or np.any((indices < 0) | (indices >= size))
            or len(np.unique(indices)) != len(indices)
        ):
            raise ModelFormatError(f"{where}: inconsistent sparse vector (size {size}, {len(indices)} indices)")
        _check_size(int(size), limit, where, f"a sparse vector of size {size}")
        dense = np.zeros(size)
        dense[indices] = values
        return dense
    raise ModelFormatError(f"{where}: not a dense (type 1) or sparse (type 0) vector")


def _dense_matrix(matrix: dict, where: str, limit: int) -> np.ndarray:
    """A MatrixUDT value as ndarray of shape (numRows, numCols); ``limit``: the most bytes it may
    take (``expansion_limit``)."""
    n_rows, n_cols = matrix.get("numRows"), matrix.get("numCols")
    transposed, values = matrix.get("isTransposed"), matrix.get("values")
    if n_rows is None or n_cols is None or n_rows < 0 or n_cols < 0 or values is None:
        raise ModelFormatError(f"{where}: matrix without numRows, numCols or values")
    values = values.astype(np.float64)
    if matrix.get("type") == 1:
        if len(values) != n_rows * n_cols:
            raise ModelFormatError(f"{where}: dense {n_rows}×{n_cols} matrix holds {len(values)} values")
        if transposed:
            return values.reshape(n_rows, n_cols).copy()  # row-major
        return values.reshape(n_cols, n_rows).T.copy()  # column-major
    if matrix.get("type") != 0 or matrix.get("colPtrs") is None or matrix.get("rowIndices") is None:
        raise ModelFormatError(f"{where}: not a dense (type 1) or sparse (type 0) matrix")
    _check_size(int(n_rows) * int(n_cols), limit, where, f"a sparse {n_rows}×{n_cols} matrix")
    # CSC of the matrix, or (isTransposed) CSC of its transpose: "major" axis = the compressed one
    n_major, n_minor = (n_rows, n_cols) if transposed else (n_cols, n_rows)
    pointers = matrix["colPtrs"].astype(np.int64)
    minor_index = matrix["rowIndices"].astype(np.int64)
    if (
        len(pointers) != n_major + 1
        or pointers[0] != 0
        or pointers[-1] != len(values)
        or len(minor_index) != len(values)
        or np.any(np.diff(pointers) < 0)
        or np.any((minor_index < 0) | (minor_index >= n_minor))
    ):
        raise ModelFormatError(f"{where}: inconsistent sparse {n_rows}×{n_cols} matrix (colPtrs / rowIndices)")
    major_index = np.repeat(np.arange(n_major), np.diff(pointers))
    if len(np.unique(major_index * n_minor + minor_index)) != len(values):
        raise ModelFormatError(f"{where}: sparse {n_rows}×{n_cols} matrix has duplicate entries")
    dense = np.zeros((n_major, n_minor))
    dense[major_index, minor_index] = values
    return dense.T.copy() if not transposed else dense


def _merged_params(meta: dict) -> dict:
    params = {}
    for key in ("defaultParamMap", "paramMap"):
        if isinstance(meta.get(key), dict):
            params.update(meta[key])
    return params


def read_mllib_model(path: str, spark=None) -> SoftmaxModel:
    """Read an MLlib ``LogisticRegressionModel`` directory (ours or Spark's) without Spark (a
    local ``path``), or copied down from any other storage URI through ``spark`` (default: the
    active session).

    Returns a SoftmaxModel with classes [0, 1, …, C−1] (MLlib's label indices). A binomial model
    (1 row w, intercept b) becomes coef [[0…], w] (2, D), intercept [0, b]. ``metadata`` holds
    fit_intercept, l2 (regParam / 2 when MLlib's objective is ours: no L1, no standardization;
    else None) and mllib (uid, sparkVersion, params). Raises ``ModelFormatError`` with one line
    naming the file when ``path`` is not such a model.
    """
    what = f"MLlib model directory {path}"
    try:
        with storage.local_copy(path, spark, what="MLlib model directory") as local:
            if not os.path.isdir(local):
                raise FileNotFoundError(local)
            try:
                return _read_local(local, what)
            except ModelFormatError as exc:  # name the remote files, not the temporary copies
                raise ModelFormatError(str(exc).replace(local, path.rstrip("/"))) from None
    except FileNotFoundError:
        raise ModelFormatError(f"{what} does not exist or is not a directory") from None


def _read_local(local: str, what: str) -> SoftmaxModel:
    meta = _read_metadata(local, what)
    if _spark_major_minor(meta, what) < (2, 1):
        raise ModelFormatError(f"{what} was saved by Spark {meta.get('sparkVersion')}; layouts before 2.1 are not supported")
    part, row = _read_data_row(local, what)
    where = f"{what}: {part}"
    n_classes, n_features, multinomial = row["numClasses"], row["numFeatures"], row["isMultinomial"]
    limit = expansion_limit(os.path.getsize(part))
    if n_classes < 1 or n_features < 0:
        raise ModelFormatError(f"{where}: numClasses {n_classes}, numFeatures {n_features}")
    # the softmax model's own arrays: (C, D) with a binomial model's zero row added
    _check_size(max(n_classes, 2) * n_features, limit, where,
                f"{max(n_classes, 2)} classes × {n_features} features")
    coef = _dense_matrix(row["coefficientMatrix"], f"{where} coefficientMatrix", limit)
    intercept = _dense_vector(row["interceptVector"], f"{where} interceptVector", limit)
    n_rows = n_classes if multinomial else 1
    if multinomial and n_classes < 2:
        raise ModelFormatError(f"{where}: numClasses is {n_classes}; a softmax model needs at least 2")
    if not multinomial and n_classes not in (1, 2):
        raise ModelFormatError(f"{where}: a binomial model with numClasses {n_classes}, expected 2")
    if coef.shape != (n_rows, n_features) or intercept.shape != (n_rows,):
        raise ModelFormatError(
            f"{where}: coefficientMatrix {coef.shape} and interceptVector {intercept.shape} do not fit "
            f"numClasses {n_classes}, numFeatures {n_features} (expected ({n_rows}, {n_features}) and ({n_rows},))"
        )
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        raise ModelFormatError(
            f"{where}: NaN or infinite coefficients or intercepts (e.g. MLlib fitted a single label); "
            "a softmax model cannot represent them"
        )
    if not multinomial:  # p(1|x) = σ(w·x + b) = softmax([0, w·x + b])_1
        coef = np.vstack([np.zeros((1, n_features)), coef])
        intercept = np.concatenate([[0.0], intercept])
    params = _merged_params(meta)
    reg_param = params.get("regParam", 0.0)
    equivalent_l2 = params.get("elasticNetParam", 0.0) == 0 and (
        not params.get("standardization", True) or reg_param == 0
    )
    metadata = {
        "fit_intercept": bool(params.get("fitIntercept", True)),
        "l2": float(reg_param) / 2.0 if equivalent_l2 else None,
        "mllib": {"uid": meta.get("uid"), "sparkVersion": meta.get("sparkVersion"), "params": params},
    }
    return SoftmaxModel(coef, intercept, list(range(coef.shape[0])), metadata=metadata)
