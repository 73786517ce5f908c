"""Check what one DAG run produced: a loadable model, predictions for every row, a metrics file.

Run with the project's Python (softmax_spark, pyarrow):
    python airflow/verify_outputs.py --model-dir D --predictions D --metrics F --eval-input F
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

import softmax_spark


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--predictions", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--eval-input", type=Path, required=True)
    args = parser.parse_args()
    problems = []

    if not (args.model_dir / "metadata.json").is_file():
        problems.append(f"no model at {args.model_dir} (metadata.json missing)")
    else:
        try:
            model = softmax_spark.load_model(str(args.model_dir))
            print(f"model: {args.model_dir}: {model.n_classes} classes {list(model.classes)}, "
                  f"{model.n_features} features")
        except Exception as exc:  # noqa: BLE001 - report any load failure
            problems.append(f"model at {args.model_dir} does not load: {exc!r}")

    n_input = pq.read_metadata(args.eval_input).num_rows
    if not args.predictions.is_dir():
        problems.append(f"no predictions directory {args.predictions}")
    else:
        files = sorted(p for p in args.predictions.rglob("*.parquet") if not p.name.startswith((".", "_")))
        if not files:
            problems.append(f"no Parquet files under {args.predictions}")
        else:
            table = pq.ParquetDataset(str(args.predictions)).read()
            print(f"predictions: {args.predictions}: {table.num_rows} rows in {len(files)} file(s), "
                  f"columns {table.column_names}")
            if table.num_rows != n_input:
                problems.append(f"predictions have {table.num_rows} rows, the input has {n_input}")

    if not args.metrics.is_file():
        problems.append(f"no metrics file {args.metrics}")
    else:
        try:
            metrics = json.loads(args.metrics.read_text())
            print(f"metrics: {args.metrics}: {json.dumps(metrics)[:400]}")
            # The test data's classes are well apart: a model that learnt anything scores high.
            accuracy = metrics.get("accuracy") if isinstance(metrics, dict) else None
            if isinstance(accuracy, (int, float)) and accuracy < 0.9:
                problems.append(f"accuracy {accuracy} < 0.9 on well-separated test data")
        except ValueError as exc:
            problems.append(f"metrics file {args.metrics} is not JSON: {exc}")

    if problems:
        print("output check FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("outputs OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
