"""Load dags/ with Airflow's DagBag and fail on any import error or an unexpected DAG shape.

Run with the Airflow environment's Python, with AIRFLOW_HOME pointing at a scratch directory:
    python airflow/check_dagbag.py [DAGS_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.dag_processing.dagbag import DagBag
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

DAG_ID = "softmax_spark_pipeline"


def main() -> int:
    dags_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "dags"
    # Example DAGs are not in dags_dir (and AIRFLOW__CORE__LOAD_EXAMPLES=False keeps them out anyway).
    bag = DagBag(dag_folder=str(dags_dir))
    for path, warnings in sorted(bag.captured_warnings.items()):
        for warning in warnings:
            print(f"warning while parsing {path}: {warning}", file=sys.stderr)
    problems: list[str] = []
    for path, error in sorted(bag.import_errors.items()):
        problems.append(f"import error in {path}:\n{error}")
    dag = bag.dags.get(DAG_ID)
    if dag is None:
        problems.append(f"DAG {DAG_ID!r} not found in {dags_dir} (found: {sorted(bag.dags)})")
    else:
        tasks = {t.task_id: t for t in dag.tasks}
        if set(tasks) != {"train", "evaluate"}:
            problems.append(f"{DAG_ID}: tasks are {sorted(tasks)}, expected train and evaluate")
        elif tasks["evaluate"].upstream_task_ids != {"train"}:
            problems.append(f"{DAG_ID}: evaluate's upstream is {tasks['evaluate'].upstream_task_ids}")
        for task in tasks.values():
            if not isinstance(task, SparkSubmitOperator):
                problems.append(f"{DAG_ID}.{task.task_id}: a {type(task).__name__}, not a SparkSubmitOperator")
            if not task.retries:
                problems.append(f"{DAG_ID}.{task.task_id}: no retries set")
    if problems:
        print("DagBag check FAILED:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    print(f"DagBag OK: {len(bag.dags)} DAG(s) from {dags_dir}, no import errors; {DAG_ID}: train >> evaluate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
