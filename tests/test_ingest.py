"""Ingest (``softmax_spark.spark.ingest``): file planning, moment merging, the block-format rule and the
block writer Spark-free; sparse ingest on Spark (CSR blocks, summary, cached bytes ∝ non-zeros,
the rebuild the ingested data owns)."""

from __future__ import annotations

import mmap
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from softmax_spark.spark import ingest as ing
from softmax_spark.spark import input_files
from softmax_spark.core import labels as labels_mod
from softmax_spark.core.features import FeatureSpec
from test_features import vector_array


# -- Spark-free ------------------------------------------------------------------------------------
def test_plan_file_units_covers_every_row_once(tmp_path):
    files = []
    for k, rows in enumerate((250, 10, 777)):
        path = tmp_path / f"f{k}.parquet"
        pq.write_table(pa.table({"x": np.arange(rows), "label": np.zeros(rows, int)}), path, row_group_size=100)
        files.append(str(path))
    plan = ing.plan_file_units(files, 4, ["x", "label"])
    assert len(plan) == 4
    sizes = [sum(stop - start for _, _, start, stop in units) for units in plan]
    assert sum(sizes) == 1037 and max(sizes) - min(sizes) <= max(sizes) // 2
    seen = set()
    for units in plan:
        for path, rg, start, stop in units:
            for r in range(start, stop):
                assert (path, rg, r) not in seen
                seen.add((path, rg, r))
    assert len(seen) == 1037
    assert ing.plan_file_units(files, 4, ["x", "missing"]) is None  # e.g. a Hive partition column
    assert ing.plan_file_units(files, 5000, ["x"]) is not None


def test_read_units_streams_exactly_the_planned_rows(tmp_path, monkeypatch):
    # one 5,000-row group split at rows that fall inside batches; a batch is 1,024 rows here
    path = tmp_path / "one_group.parquet"
    x = np.arange(5000)
    pq.write_table(pa.table({"x": x, "v": [[float(i)] * 8 for i in x]}), path, row_group_size=5000)
    monkeypatch.setattr(input_files, "BATCH_VALUES", 1)
    assert input_files._batch_rows(pq.ParquetFile(path).metadata.row_group(0)) == 1024
    for start, stop in [(0, 1), (0, 1024), (1000, 1030), (1023, 3077), (4999, 5000), (0, 5000)]:
        batches = list(input_files._read_units([(str(path), 0, start, stop)], ["x", "v"]))
        got = np.concatenate([b.column(0).to_numpy() for b in batches])
        np.testing.assert_array_equal(got, x[start:stop])
        assert all(b.num_rows <= 1024 for b in batches)
        assert [len(v) for b in batches for v in b.column(1).to_pylist()] == [8] * (stop - start)


@pytest.mark.parametrize("d", [4, ing.FULL_COVARIANCE_MAX_FEATURES + 1])
@pytest.mark.parametrize("weighted", [False, True])
def test_merged_moments_equal_the_whole(d, weighted):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, d)) * 5 + 1000.0
    w = rng.uniform(0, 2, 300) if weighted else None
    whole = ing.batch_moments(X, w)
    merged = None
    for part in np.array_split(np.arange(300), 7):
        merged = ing.merge_moments(merged, ing.batch_moments(X[part], None if w is None else w[part]))
    assert merged[0] == pytest.approx(whole[0])
    np.testing.assert_allclose(merged[1], whole[1], rtol=1e-13)
    np.testing.assert_allclose(merged[2], whole[2], rtol=1e-9)
    assert ing.merge_moments(None, whole) is whole and ing.merge_moments(whole, None) is whole


@pytest.mark.parametrize("d", [30, ing.FULL_COVARIANCE_MAX_FEATURES + 8])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_moments_equal_dense_moments(d, weighted):
    """Column sums and sums of squares of a CSR chunk (and XᵀWX for small D) give the moments
    of its dense form; chunks merge like dense ones."""
    rng = np.random.default_rng(1)
    X = sp.random(400, d, density=0.05, random_state=1, format="csr") * 4
    w = rng.uniform(0, 2, 400) if weighted else None
    dense = ing.batch_moments(X.toarray(), w)
    merged = None
    for part in np.array_split(np.arange(400), 3):
        merged = ing.merge_moments(merged, ing.sparse_batch_moments(X[part], None if w is None else w[part]))
    assert merged[2].shape == dense[2].shape
    np.testing.assert_allclose(merged[1], dense[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(merged[2], dense[2], rtol=1e-10, atol=1e-12)


def test_block_format_rule():
    rule = ing.choose_block_format
    assert rule(1000, 100, 24_000, 8) == "csr"  # density 0.24
    assert rule(1000, 100, 25_000, 8) == "dense"
    assert rule(1000, 1 << 20, 600 * (1 << 20), 8) == "csr"  # wide, density 0.6: smaller files
    assert rule(1000, 1 << 20, 700 * (1 << 20), 8) == "dense"  # density 0.7: CSR files larger
    assert rule(1000, 1 << 20, 600 * (1 << 20), 4) == "dense"  # float32: CSR smaller below 1/2
    assert rule(0, 10, 0, 8) == "dense"


def _writer_run(tmp_path, monkeypatch, batches, block_format="auto", weights=None):
    monkeypatch.setenv("SPARK_LOCAL_DIRS", str(tmp_path))
    plan = (FeatureSpec(), "label", "w" if weights is not None else None, [0, 1, 2], np.dtype("float64"),
            "test", None, block_format)
    record = ing._write_blocks(iter(batches), plan, 0)
    return ing._to_descriptor(record), record


def _table(X, y, sparse_rows=None, w=None):
    cols = {"features": vector_array(X, sparse_rows), "label": pa.array(y)}
    if w is not None:
        cols["w"] = pa.array(w)
    return pa.table(cols)


@pytest.mark.parametrize("first", ["dense", "sparse"])
def test_writer_converts_when_the_partition_disagrees_with_its_first_batch(tmp_path, monkeypatch, first):
    """"auto" picks the format from the first batch; ``finish`` converts the files when the whole
    partition's density picks the other one. Either way the block holds the same rows."""
    rng = np.random.default_rng(2)
    dense_part = rng.normal(size=(50, 30))
    sparse_part = sp.random(400, 30, density=0.02, random_state=2).toarray()
    if first == "dense":  # 50 dense rows, then 400 at density 0.02: CSR overall
        X, expected = np.vstack([dense_part, sparse_part]), "csr"
    else:  # 50 rows at density 0.02, then 400 dense ones: dense overall
        X, expected = np.vstack([sparse_part[:50], rng.normal(size=(400, 30))]), "dense"
    y = rng.integers(0, 3, len(X))
    table = _table(X, y)
    head = 50
    batches = table.slice(0, head).to_batches() + table.slice(head).to_batches()
    d, record = _writer_run(tmp_path, monkeypatch, batches)
    assert d.format == expected and d.nnz == np.count_nonzero(X)
    Xb, yb, wb = d.open()
    np.testing.assert_array_equal(Xb.toarray() if sp.issparse(Xb) else Xb, X)
    np.testing.assert_array_equal(yb, y)
    assert wb is None
    left = sorted(os.listdir(os.path.dirname(d.path)))
    assert all(name.startswith("part-00000.") and "attempt" not in name for name in left), left
    assert os.path.getsize(d.path + ".y.npy") > 0
    d.remove()


def test_csr_block_files_are_memory_mapped_and_sized_by_nonzeros(tmp_path, monkeypatch):
    X = sp.random(2000, 5000, density=0.001, random_state=3).toarray()
    y = np.arange(2000) % 3
    w = np.linspace(0.5, 1.5, 2000)
    d, record = _writer_run(tmp_path, monkeypatch, _table(X, y, w=w).to_batches(max_chunksize=300), weights=True)
    assert d.format == "csr" and d.nnz == np.count_nonzero(X)
    Xb, yb, wb = d.open()
    for array in (Xb.data, Xb.indices, Xb.indptr):  # views of the files, no copy
        while isinstance(array.base, np.ndarray):
            array = array.base
        assert isinstance(array, np.memmap) or isinstance(array.base, mmap.mmap)
    np.testing.assert_array_equal(Xb.toarray(), X)
    np.testing.assert_allclose(wb, w)
    files = sum(os.path.getsize(d.path + s) for s in (".indptr", ".indices", ".values"))
    assert files == 4 * 2001 + 12 * d.nnz  # ∝ non-zeros, not N·D
    summary = ing._summarise([record], [0, 1, 2])
    assert summary.block_formats == {"csr": 1} and summary.nnz == d.nnz
    assert summary.cached_bytes == d.cached_bytes() and summary.covariance is None
    mean = w @ X / w.sum()
    np.testing.assert_allclose(summary.col_mean, mean, atol=1e-14)
    np.testing.assert_allclose(summary.col_var, w @ (X - mean) ** 2 / w.sum(), atol=1e-12)
    d.remove()
    assert not os.path.exists(os.path.dirname(d.path))


def test_forced_formats(tmp_path, monkeypatch):
    X = np.eye(6)[np.arange(40) % 6] * 2.0
    y = np.arange(40) % 3
    for fmt in ("dense", "csr"):
        d, _ = _writer_run(tmp_path, monkeypatch, _table(X, y).to_batches(), block_format=fmt)
        assert d.format == fmt
        Xb, _, _ = d.open()
        np.testing.assert_array_equal(Xb.toarray() if sp.issparse(Xb) else Xb, X)
        d.remove()


def test_bad_row_in_a_later_batch_leaves_no_file(tmp_path, monkeypatch):
    from softmax_spark.core.errors import InputError
    from test_features import VECTOR_TYPE, sparse_row

    good = _table(np.eye(4), [0, 1, 2, 0])
    bad = pa.table({"features": pa.array([sparse_row(4, [2, 1], [1, 1])], type=VECTOR_TYPE), "label": [1]})
    with pytest.raises(InputError, match="unsorted indices .* at partition 0 row 4"):
        _writer_run(tmp_path, monkeypatch, good.to_batches() + bad.to_batches())
    run_dir = tmp_path / "softmax_spark-test"
    assert not run_dir.exists() or os.listdir(run_dir) == []


@pytest.mark.parametrize("block_format,first", [("dense", "dense"), ("csr", "dense"), ("auto", "dense"),
                                                ("auto", "sparse")])
def test_run_directory_0700_and_block_files_0600_under_umask_000(tmp_path, monkeypatch, block_format, first):
    """Issue 24 item 4: another local user can neither read nor rewrite the training data, whatever
    the umask (the auto cases convert the partition's format after its first batch)."""
    rng = np.random.default_rng(5)
    sparse_part = sp.random(200, 20, density=0.02, random_state=5).toarray()
    dense_part = rng.normal(size=(20, 20))
    X = np.vstack([dense_part, sparse_part] if first == "dense" else [sparse_part[:20], rng.normal(size=(200, 20))])
    y = np.arange(len(X)) % 3
    table = _table(X, y, w=np.ones(len(X)))
    old = os.umask(0)
    try:
        d, _ = _writer_run(tmp_path, monkeypatch, table.slice(0, 20).to_batches() + table.slice(20).to_batches(),
                           block_format=block_format, weights=True)
    finally:
        os.umask(old)
    run_dir = tmp_path / "softmax_spark-test"
    assert (run_dir.stat().st_mode & 0o777) == 0o700
    modes = {name: oct(os.stat(run_dir / name).st_mode & 0o777) for name in os.listdir(run_dir)}
    owner = tmp_path / ("softmax_spark-test" + ing.OWNER_SUFFIX)
    modes[owner.name] = oct(owner.stat().st_mode & 0o777)
    assert len(modes) >= 4 and set(modes.values()) == {"0o600"}, modes
    d.remove()


# -- on Spark --------------------------------------------------------------------------------------
def sparse_frame(spark, X, y, partitions=2, dense_every=0):
    """A DataFrame with an ml Vector column: SparseVector rows (every ``dense_every``-th a DenseVector)."""
    from pyspark.ml.linalg import Vectors

    rows = []
    for i, (x, label) in enumerate(zip(X, y)):
        nz = np.flatnonzero(x)
        vec = (Vectors.dense(x) if dense_every and i % dense_every == 0
               else Vectors.sparse(len(x), nz.tolist(), x[nz].tolist()))
        rows.append((vec, int(label)))
    return spark.createDataFrame(rows, ["features", "label"]).repartition(partitions)


def test_sparse_ingest_on_spark(spark):
    from softmax_spark.spark.distributed import DistributedLoss
    from core_helpers import objective_and_gradient

    rng = np.random.default_rng(4)
    X = sp.random(300, 2000, density=0.004, random_state=4).toarray() * 3
    y = rng.integers(0, 3, 300)
    df = sparse_frame(spark, X, y, dense_every=7)
    data = ing.ingest(df, FeatureSpec(), "label", [0, 1, 2])
    try:
        s = data.summary
        assert data.block_format == "csr" and s.nnz == np.count_nonzero(X) and s.n_features == 2000
        assert s.cached_bytes < 300 * 2000 * 8 / 20  # ∝ non-zeros, never N·D
        np.testing.assert_allclose(s.col_mean, X.mean(axis=0), atol=1e-14)
        np.testing.assert_allclose(s.col_var, X.var(axis=0), atol=1e-12)
        coef, b = rng.normal(size=(3, 2000)), rng.normal(size=3)
        loss = DistributedLoss(data, 3, 2000)  # an IngestedData: it rebuilds itself
        result = loss(coef, b)
        J, gW, gb = objective_and_gradient(coef, b, X, y)
        assert result.loss == pytest.approx(J, rel=1e-12)
        np.testing.assert_allclose(result.grad_coef, gW, atol=1e-12)
        # lose the block files: the pass rebuilds through IngestedData.rebuild, same sums
        old_run = data.run_id
        ing.remove_blocks(data.blocks)
        again = loss(coef, b)
        assert data.run_id != old_run and loss.blocks is data.blocks
        assert again.loss == pytest.approx(result.loss, rel=1e-13)
    finally:
        data.release()


@pytest.mark.parametrize("densities, run_format", [((0.9, 0.02), "dense"), ((0.3, 0.01), "csr")])
def test_one_block_format_per_run_from_the_runs_density(spark, tmp_path, densities, run_format):
    """Two partitions whose densities pick different formats (``choose_block_format`` per
    partition) end as ONE format, the whole run's choice: the differing block is converted in
    place, the summary's cached bytes are the files', the sums are unchanged, and a block rebuilt
    after its files went (``BlockDescriptor.local`` from the input) comes back in the run's format."""
    from softmax_spark.spark.distributed import DistributedLoss
    from core_helpers import objective_and_gradient

    rng = np.random.default_rng(11)
    D, n = 64, 200
    parts = [sp.random(n, D, density=rho, random_state=k).toarray() * 2 for k, rho in enumerate(densities)]
    assert [ing.choose_block_format(n, D, np.count_nonzero(P), 8) for P in parts] == ["dense", "csr"]
    X = np.vstack(parts)
    y = rng.integers(0, 3, 2 * n)
    for k in range(2):  # one Parquet file per partition (the direct path keeps them apart)
        sparse_frame(spark, parts[k], y[k * n:(k + 1) * n], partitions=1).write.parquet(str(tmp_path / f"p{k}"))
    df = spark.read.parquet(str(tmp_path / "p0"), str(tmp_path / "p1"))
    files = [f for k in range(2) for f in df.inputFiles() if f"/p{k}/" in f]
    data = ing.ingest(df, FeatureSpec(), "label", [0, 1, 2], files=files, n_partitions=2)
    try:
        s = data.summary
        descriptors = data.blocks.collect()
        assert data.block_format == run_format and s.block_formats == {run_format: 2}
        assert [d.format for d in descriptors] == [run_format] * 2 and s.nnz == np.count_nonzero(X)
        other = {"dense": "csr", "csr": "dense"}[run_format]
        for d in descriptors:  # the files on disk are the run's format only, sized as reported
            assert d.exists() and not any(os.path.exists(d.path + f) for f in ing._FILES[other])
            assert not [name for name in os.listdir(os.path.dirname(d.path)) if "convert" in name]
        x_bytes = sum(os.path.getsize(d.path + f) for d in descriptors for f in ing._FILES[run_format])
        y_bytes = sum(d.n_rows * np.dtype(d.label_dtype).itemsize for d in descriptors)
        assert s.cached_bytes == sum(d.cached_bytes() for d in descriptors) == x_bytes + y_bytes
        coef, b = rng.normal(size=(3, D)), rng.normal(size=3)
        loss = DistributedLoss(data, 3, D)
        result = loss(coef, b)
        J, gW, gb = objective_and_gradient(coef, b, X, y)
        assert result.loss == pytest.approx(J, rel=1e-12)
        np.testing.assert_allclose(result.grad_coef, gW, atol=1e-12)
        np.testing.assert_allclose(result.grad_intercept, gb, atol=1e-12)
        # a block's files go: the task writes them again from the input, in the run's format
        for d in descriptors:
            for f in ing._FILES[run_format]:
                os.remove(d.path + f)
        again = loss(coef, b)
        assert again.loss == pytest.approx(result.loss, rel=1e-13)
        for d in descriptors:
            assert d.exists() and not any(os.path.exists(d.path + f) for f in ing._FILES[other])
        # every block and its run directory gone: written again from the input, one format again
        ing.remove_blocks(data.blocks)
        assert loss(coef, b).loss == pytest.approx(result.loss, rel=1e-13)
        for d in descriptors:
            assert d.exists() and not any(os.path.exists(d.path + f) for f in ing._FILES[other])
        # the driver's rebuild (ingest again) applies the same run rule
        data.rebuild()
        assert data.summary.block_formats == {run_format: 2} and data.summary.cached_bytes == s.cached_bytes
        assert DistributedLoss(data, 3, D)(coef, b).loss == pytest.approx(result.loss, rel=1e-13)
    finally:
        data.release()


@pytest.mark.parametrize("label", [
    pa.array([3, 1, None, 2, 1], pa.int32()),
    pa.array([0.0, -0.0, 1.5, None, 1.5]),
    pa.array(["b", "a", None, "b", "c"]),
    pa.array([True, False, None, True, True]),
])
def test_classes_from_local_files_equal_spark_distinct(spark, tmp_path, label):
    """The pyarrow shortcut (small local Parquet inputs) returns what Spark's distinct returns."""
    pq.write_table(pa.table({"label": label}), tmp_path / "part-0.parquet")
    df = spark.read.parquet(str(tmp_path))
    files = sorted(df.inputFiles())
    assert labels_mod.classes_from_files(files, "label") is not None  # the shortcut applies here
    assert ing.discover_classes(df, "label", files) == ing.discover_classes(df, "label")


def test_classes_from_files_leaves_other_cases_to_spark(tmp_path):
    pq.write_table(pa.table({"label": pa.array([1.0, float("nan")])}), tmp_path / "nan.parquet")
    pq.write_table(pa.table({"label": pa.array([1, 2], pa.decimal128(5, 0))}), tmp_path / "dec.parquet")
    assert labels_mod.classes_from_files([f"file://{tmp_path}/nan.parquet"], "label") is None
    assert labels_mod.classes_from_files([f"file://{tmp_path}/dec.parquet"], "label") is None
    assert labels_mod.classes_from_files([f"file://{tmp_path}/dec.parquet"], "other") is None
    assert labels_mod.classes_from_files([f"hdfs://nn{tmp_path}/dec.parquet"], "label") is None
