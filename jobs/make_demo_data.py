"""Write the bundled demo dataset: scikit-learn's hand-written digits (1,797 rows × 64 pixel
features, 10 classes; shipped inside the scikit-learn package, no download) as Parquet.

    python jobs/make_demo_data.py --out demo_out/data

writes ``train.parquet`` (75 %) and ``test.parquet`` (25 %), split per class with a fixed seed,
with columns ``id`` (long), ``features`` (array<double>) and ``label`` (long).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def digits_tables(seed: int = 0, test_fraction: float = 0.25) -> tuple[pa.Table, pa.Table]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = digits.data.astype(np.float64), digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        test[rng.choice(rows, size=int(round(test_fraction * len(rows))), replace=False)] = True

    def table(mask):
        return pa.table({
            "id": np.flatnonzero(mask).astype(np.int64),
            "features": pa.array(list(X[mask]), type=pa.list_(pa.float64())),
            "label": y[mask],
        })

    return table(~test), table(test)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out/data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    train, test = digits_tables(args.seed)
    pq.write_table(train, os.path.join(args.out, "train.parquet"))
    pq.write_table(test, os.path.join(args.out, "test.parquet"))
    print(f"demo data: {train.num_rows} training rows, {test.num_rows} test rows in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
