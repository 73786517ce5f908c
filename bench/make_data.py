"""Synthetic multinomial (softmax) data set for the benchmark, written with numpy + pyarrow (no Spark).

Layout under ``--root`` (default bench/data)::

    synth_r<rows>_f<features>_c<classes>_s<seed>/part-00000.parquet ...   the data
    synth_r<rows>_f<features>_c<classes>_s<seed>.json                      the manifest

Each Parquet file has two columns: ``features`` (list<double>, read by Spark as array<double>) and
``label`` (int32, read as int). The manifest is written last: a data set counts as present only
when its manifest exists, matches the requested parameters, and every listed file has the recorded
size. Otherwise it is generated again (into a temporary sibling, renamed into place).

The model behind the data: x = mean + scale ⊙ z with z ~ N(0, I) (per-feature means in [-1, 1]
and scales in [0.5, 2], so the unstandardised problem is not trivially conditioned); true
coefficients W* = G / scale with G ~ N(0, signal² / D) per entry, and b* = c − W* mean with
c ~ N(0, 0.5²), so the logits are c + G z (classes roughly balanced); y is drawn from
softmax(W* x + b*) with the Gumbel-max trick. Reproducible: every row group draws from its own
child of ``numpy.random.SeedSequence(seed)``, so the data depend only on the parameters in the
manifest (including the fixed row-group size), not on the machine or numpy's thread count.

Kinds (``--kind``; issue 14's workloads): ``gaussian`` (the model above), ``pixels`` (x rounded and
clipped to 0–255 around 127.5 ± 40: an image-like shape, e.g. 60k × 784 × 10), ``badly_scaled``
(zero means, column scales 10^-2 … 10^3 — the "small" workload's conditioning), ``sparse`` (each
row has ~``nnz_per_row`` non-zeros at random columns, values N(0, 1); written as an ml
SparseVector column in Spark's VectorUDT struct layout, with the Spark schema in the footer so
Spark reads it back as a Vector). The kind is part of the data set's name and manifest.

``--dtype float32`` (dense kinds): the features are rounded to float32 before the labels are drawn
and written as list<float> (Spark: array<float>), so the values are exactly float32 — issue 14's
float32 input, which our trainer caches as float32 (``--dtype auto``) and MLlib reads through
``array_to_vector`` as doubles. The name gains ``_f32`` and the manifest ``"dtype": "float32"``.

Usage:  python bench/make_data.py --rows 1000000 --features 64 --classes 10 [--seed 42]
Prints the data directory's path on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

GENERATOR_VERSION = 2  # bump whenever the generated values change
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ROOT = os.path.join(BENCH_DIR, "data")
DEFAULT_ROW_GROUP_ROWS = 65536
DEFAULT_ROWS_PER_FILE = 262144
SCHEMA = pa.schema([("features", pa.list_(pa.float64())), ("label", pa.int32())])


KINDS = ("gaussian", "pixels", "badly_scaled", "sparse")
VECTOR_STRUCT = pa.struct([("type", pa.int8()), ("size", pa.int32()), ("indices", pa.list_(pa.int32())),
                           ("values", pa.list_(pa.float64()))])


DTYPES = ("float64", "float32")


def dataset_name(rows: int, features: int, classes: int, seed: int, kind: str = "gaussian",
                 dtype: str = "float64") -> str:
    suffix = ("" if kind == "gaussian" else f"_{kind}") + ("" if dtype == "float64" else "_f32")
    return f"synth_r{rows}_f{features}_c{classes}_s{seed}{suffix}"


def _params(rows, features, classes, seed, signal, row_group_rows, rows_per_file, compression,
            kind="gaussian", nnz_per_row=40, dtype="float64"):
    extra = {} if kind == "gaussian" else {"kind": kind}  # gaussian manifests stay as they were
    if dtype != "float64":  # float64 manifests too
        extra["dtype"] = dtype
    if kind == "sparse":
        extra["nnz_per_row"] = int(nnz_per_row)
    return {**extra,
        "generator_version": GENERATOR_VERSION,
        "rows": int(rows),
        "features": int(features),
        "classes": int(classes),
        "seed": int(seed),
        "signal": float(signal),
        "row_group_rows": int(row_group_rows),
        "rows_per_file": int(rows_per_file),
        "compression": compression,
    }


def read_manifest(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def manifest_matches(manifest: dict | None, params: dict, data_dir: str) -> bool:
    """True when ``manifest`` was written for ``params`` and all its files are intact (by size)."""
    if not manifest or manifest.get("params") != params:
        return False
    files = manifest.get("files") or []
    if not files:
        return False
    for entry in files:
        path = os.path.join(data_dir, entry["name"])
        if not os.path.isfile(path) or os.path.getsize(path) != entry["bytes"]:
            return False
    return True


def true_parameters(seed_seq: np.random.SeedSequence, features: int, classes: int, signal: float):
    """(mean, scale, W*, b*) of the generating model, from their own seed."""
    rng = np.random.default_rng(seed_seq)
    mean = rng.uniform(-1.0, 1.0, size=features)
    scale = rng.uniform(0.5, 2.0, size=features)
    coef = rng.normal(0.0, signal / np.sqrt(features), size=(classes, features))
    coef /= scale  # logits of comparable size whatever the feature's scale
    # centre the logits on the feature means, so no class is rare by accident of the offsets
    intercept = rng.normal(0.0, 0.5, size=classes) - coef @ mean
    return mean, scale, coef, intercept


def kind_parameters(kind, features, classes, signal, param_seq):
    """(mean, scale, W*, b*) for ``kind``: the gaussian model's, or the kind's own scales."""
    mean, scale, coef, intercept = true_parameters(param_seq, features, classes, signal)
    if kind == "pixels":
        g = coef * scale
        mean, scale = np.full(features, 127.5), np.full(features, 40.0)
        coef = g / scale
        intercept = intercept - coef @ mean
    elif kind == "badly_scaled":
        g = coef * scale
        mean, scale = np.zeros(features), np.logspace(-2, 3, features)
        coef = g / scale
    elif kind == "sparse":
        mean, scale = np.zeros(features), np.ones(features)
    return mean, scale, coef, intercept


def make_block(seed_seq, n, mean, scale, coef, intercept, kind="gaussian", nnz_per_row=40, dtype="float64"):
    """One row group: features (n, D) in ``dtype`` (a float64 CSR matrix for ``sparse``) and labels
    (n,) int32 drawn from those values."""
    rng = np.random.default_rng(seed_seq)
    d = mean.shape[0]
    if kind == "sparse":
        import scipy.sparse as sp

        counts = np.minimum(rng.poisson(nnz_per_row, n), d)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        # distinct sorted columns per row: a random sample without replacement for each row
        indices = np.concatenate([np.sort(rng.choice(d, k, replace=False)) for k in counts]) if n else []
        X = sp.csr_matrix((rng.standard_normal(indptr[-1]), np.asarray(indices, np.int32), indptr), shape=(n, d))
        logits = np.asarray(X @ (coef.T * np.sqrt(d / max(nnz_per_row, 1))))
    else:
        X = rng.standard_normal((n, d))
        X *= scale
        X += mean
        if kind == "pixels":
            np.clip(np.round(X, out=X), 0.0, 255.0, out=X)
        X = X.astype(dtype, copy=False)
        logits = X @ coef.T
    logits += intercept
    logits += rng.gumbel(size=logits.shape)  # argmax(logits + Gumbel) ~ softmax(logits)
    y = np.argmax(logits, axis=1).astype(np.int32)
    return X, y


def spark_footer(label_type: str = "integer") -> dict:
    """The footer key through which Spark reads the struct column back as an ml Vector."""
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql import types as T

    label = {"integer": T.IntegerType()}[label_type]
    schema = T.StructType([T.StructField("features", VectorUDT()), T.StructField("label", label)])
    return {b"org.apache.spark.sql.parquet.row.metadata": schema.json().encode()}


def to_sparse_table(X, y: np.ndarray) -> pa.Table:
    """SparseVector rows (type 0) of the CSR matrix ``X`` in the VectorUDT struct layout."""
    n, d = X.shape
    offsets = pa.array(X.indptr.astype(np.int32))
    vectors = pa.StructArray.from_arrays(
        [pa.array(np.zeros(n, np.int8)), pa.array(np.full(n, d, np.int32)),
         pa.ListArray.from_arrays(offsets, pa.array(X.indices.astype(np.int32))),
         pa.ListArray.from_arrays(offsets, pa.array(X.data.astype(np.float64)))],
        fields=list(VECTOR_STRUCT))
    return pa.Table.from_arrays([vectors, pa.array(y, type=pa.int32())], names=["features", "label"])


def to_table(X: np.ndarray, y: np.ndarray) -> pa.Table:
    """list<double> features for a float64 X, list<float> for a float32 one."""
    n, d = X.shape
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int32))
    values = pa.array(np.ascontiguousarray(X).reshape(-1))
    schema = dense_schema(X.dtype.name)
    features = pa.ListArray.from_arrays(offsets, values, type=schema.field("features").type)
    return pa.Table.from_arrays([features, pa.array(y, type=pa.int32())], schema=schema)


def dense_schema(dtype: str = "float64") -> pa.Schema:
    return SCHEMA if dtype == "float64" else pa.schema([("features", pa.list_(pa.float32())), ("label", pa.int32())])


def generate(data_dir: str, params: dict, log=print) -> dict:
    """Write the Parquet files of ``params`` into the (new, empty) directory ``data_dir``."""
    rows, features, classes = params["rows"], params["features"], params["classes"]
    rg_rows, per_file = params["row_group_rows"], params["rows_per_file"]
    if per_file % rg_rows:
        raise ValueError("rows_per_file must be a multiple of row_group_rows")
    root_seq = np.random.SeedSequence(params["seed"])
    param_seq, data_seq = root_seq.spawn(2)
    kind, nnz = params.get("kind", "gaussian"), params.get("nnz_per_row", 40)
    mean, scale, coef, intercept = kind_parameters(kind, features, classes, params["signal"], param_seq)
    dtype = params.get("dtype", "float64")
    schema = dense_schema(dtype)
    if kind == "sparse":
        schema = pa.schema([("features", VECTOR_STRUCT), ("label", pa.int32())], metadata=spark_footer())
    n_groups = -(-rows // rg_rows)
    group_seqs = data_seq.spawn(n_groups)
    files, counts = [], np.zeros(classes, dtype=np.int64)
    writer, file_rows, file_name = None, 0, None
    t0 = time.perf_counter()
    try:
        for g in range(n_groups):
            start = g * rg_rows
            n = min(rg_rows, rows - start)
            if writer is None:
                file_name = f"part-{len(files):05d}.parquet"
                writer = pq.ParquetWriter(
                    os.path.join(data_dir, file_name), schema, compression=params["compression"]
                )
                file_rows = 0
            X, y = make_block(group_seqs[g], n, mean, scale, coef, intercept, kind, nnz, dtype)
            counts += np.bincount(y, minlength=classes)
            table = to_sparse_table(X, y) if kind == "sparse" else to_table(X, y)
            writer.write_table(table.replace_schema_metadata(schema.metadata), row_group_size=rg_rows)
            file_rows += n
            if file_rows >= per_file or g == n_groups - 1:
                writer.close()
                writer = None
                path = os.path.join(data_dir, file_name)
                files.append({"name": file_name, "rows": file_rows, "bytes": os.path.getsize(path)})
    finally:
        if writer is not None:
            writer.close()
    seconds = time.perf_counter() - t0
    log(f"make_data: wrote {rows} rows in {len(files)} files ({sum(f['bytes'] for f in files) / 2**20:.1f} MiB) "
        f"in {seconds:.1f}s")
    return {
        "params": params,
        "files": files,
        "class_counts": counts.tolist(),
        "total_bytes": sum(f["bytes"] for f in files),
        "generation_seconds": round(seconds, 3),
        "true_intercept": intercept.tolist(),
    }


def ensure_dataset(
    rows: int,
    features: int = 64,
    classes: int = 10,
    seed: int = 42,
    root: str = DEFAULT_ROOT,
    signal: float = 4.0,
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
    compression: str = "snappy",
    force: bool = False,
    log=print,
    kind: str = "gaussian",
    nnz_per_row: int = 40,
    dtype: str = "float64",
) -> tuple[str, dict]:
    """Return (data_dir, manifest), generating the data set unless an intact copy exists."""
    if rows < 1 or features < 1 or classes < 2:
        raise ValueError("need rows >= 1, features >= 1 and classes >= 2")
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
    if dtype not in DTYPES or (dtype != "float64" and kind == "sparse"):
        raise ValueError(f"dtype {dtype!r}: expected float64, or float32 for a dense kind (ml Vectors are double)")
    params = _params(rows, features, classes, seed, signal, row_group_rows, rows_per_file, compression,
                     kind, nnz_per_row, dtype)
    os.makedirs(root, exist_ok=True)
    name = dataset_name(rows, features, classes, seed, kind, dtype)
    data_dir = os.path.join(root, name)
    manifest_path = data_dir + ".json"
    manifest = read_manifest(manifest_path)
    if not force and manifest_matches(manifest, params, data_dir):
        log(f"make_data: reusing {data_dir} (manifest matches)")
        return data_dir, manifest
    if manifest is not None and not force:
        log(f"make_data: {manifest_path} does not match these parameters (or files changed): regenerating")
    # Invalidate first: a crash below leaves no manifest, so no half data set is ever reused.
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    tmp = os.path.join(root, f".{name}.tmp-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)
    try:
        manifest = generate(tmp, params, log=log)
        if os.path.exists(data_dir):
            shutil.rmtree(data_dir)
        os.rename(tmp, data_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manifest["path"] = data_dir
    tmp_manifest = manifest_path + f".tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp_manifest, "w") as f:
        json.dump(manifest, f, indent=2)
    os.replace(tmp_manifest, manifest_path)
    return data_dir, manifest


def load_numpy(data_dir: str, manifest: dict | None = None, dtype=np.float64):
    """All rows as (X of shape (n, D) in ``dtype``, y of shape (n,) int64), read row group by
    row group into preallocated arrays (peak memory ≈ the result plus one row group). A
    ``sparse`` data set gives X as a scipy.sparse CSR matrix."""
    if manifest is None:
        manifest = read_manifest(data_dir + ".json")
    if manifest is None:
        raise FileNotFoundError(f"no manifest next to {data_dir}")
    n, d = manifest["params"]["rows"], manifest["params"]["features"]
    if manifest["params"].get("kind") == "sparse":
        return _load_sparse(data_dir, manifest, dtype)
    X = np.empty((n, d), dtype=dtype)
    y = np.empty(n, dtype=np.int64)
    pos = 0
    for entry in manifest["files"]:
        pf = pq.ParquetFile(os.path.join(data_dir, entry["name"]))
        for g in range(pf.num_row_groups):
            table = pf.read_row_group(g, columns=["features", "label"])
            feats = table.column("features").combine_chunks()
            values = feats.flatten().to_numpy(zero_copy_only=False)
            m = table.num_rows
            if values.shape[0] != m * d:
                raise ValueError(f"{entry['name']} row group {g}: feature arrays are not all of length {d}")
            X[pos : pos + m] = values.reshape(m, d)
            y[pos : pos + m] = table.column("label").to_numpy()
            pos += m
    if pos != n:
        raise ValueError(f"{data_dir}: read {pos} rows, the manifest says {n}")
    return X, y


def _load_sparse(data_dir, manifest, dtype):
    import scipy.sparse as sp

    parts, labels = [], []
    d = manifest["params"]["features"]
    for entry in manifest["files"]:
        table = pq.read_table(os.path.join(data_dir, entry["name"]))
        vec = table.column("features").combine_chunks()
        idx, val = vec.field("indices"), vec.field("values")
        indptr = idx.offsets.to_numpy().astype(np.int64)
        indptr -= indptr[0]
        parts.append(sp.csr_matrix((val.flatten().to_numpy().astype(dtype), idx.flatten().to_numpy(), indptr),
                                   shape=(table.num_rows, d)))
        labels.append(table.column("label").to_numpy().astype(np.int64))
    return sp.vstack(parts, format="csr"), np.concatenate(labels)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--signal", type=float, default=4.0, help="std of the true logits' linear part")
    p.add_argument("--root", default=DEFAULT_ROOT, help="where data sets live (default bench/data)")
    p.add_argument("--row-group-rows", type=int, default=DEFAULT_ROW_GROUP_ROWS)
    p.add_argument("--rows-per-file", type=int, default=DEFAULT_ROWS_PER_FILE)
    p.add_argument("--compression", default="snappy", choices=["snappy", "zstd", "none"])
    p.add_argument("--force", action="store_true", help="regenerate even if an intact copy exists")
    p.add_argument("--kind", choices=KINDS, default="gaussian", help="see the module docstring")
    p.add_argument("--nnz-per-row", type=int, default=40, help="sparse kind: mean non-zeros per row")
    p.add_argument("--dtype", choices=DTYPES, default="float64",
                   help="feature values: float64 (list<double>) or float32 (list<float>; dense kinds)")
    a = p.parse_args(argv)
    data_dir, manifest = ensure_dataset(
        a.rows, a.features, a.classes, a.seed, a.root, a.signal, a.row_group_rows,
        a.rows_per_file, a.compression, a.force, log=lambda m: print(m, file=sys.stderr),
        kind=a.kind, nnz_per_row=a.nnz_per_row, dtype=a.dtype,
    )
    print(json.dumps({"class_counts": manifest["class_counts"], "total_bytes": manifest["total_bytes"]}),
          file=sys.stderr)
    print(data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
