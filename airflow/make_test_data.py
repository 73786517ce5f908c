"""Write a small, well-separated 3-class data set as Parquet for the Airflow end-to-end test.

Run with the project's Python (numpy + pyarrow):  python airflow/make_test_data.py OUT_DIR
Writes OUT_DIR/train.parquet and OUT_DIR/eval.parquet: a ``features`` column of list<double>
(length 4) and an int64 ``label`` column in {0, 1, 2}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N_FEATURES = 4
CENTRES = np.array(
    [[2.0, 0.0, 0.0, 1.0],
     [-2.0, 2.0, 0.0, 0.0],
     [0.0, -2.0, 2.0, -1.0]]
)


def make(n_rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CENTRES), size=n_rows)
    features = CENTRES[labels] + rng.normal(scale=0.7, size=(n_rows, N_FEATURES))
    return pa.table(
        {
            "features": pa.array(features.tolist(), type=pa.list_(pa.float64())),
            "label": pa.array(labels, type=pa.int64()),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train-rows", type=int, default=600)
    parser.add_argument("--eval-rows", type=int, default=150)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(make(args.train_rows, seed=1), args.out_dir / "train.parquet")
    pq.write_table(make(args.eval_rows, seed=2), args.out_dir / "eval.parquet")
    print(f"wrote {args.train_rows} + {args.eval_rows} rows under {args.out_dir}")


if __name__ == "__main__":
    main()
