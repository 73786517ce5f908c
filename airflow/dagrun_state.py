"""Exit 0 only if the DAG run for a logical date succeeded with every task instance successful.

Run with the Airflow environment's Python and the same AIRFLOW_* environment as the run:
    python airflow/dagrun_state.py DAG_ID YYYY-MM-DD
"""

from __future__ import annotations

import sys

import pendulum
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session


def main() -> int:
    dag_id, date = sys.argv[1], sys.argv[2]
    logical_date = pendulum.parse(date, tz="UTC")
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date).all()
        if len(runs) != 1:
            print(f"expected one run of {dag_id} at {logical_date}, found {len(runs)}", file=sys.stderr)
            return 1
        run = runs[0]
        states = {ti.task_id: ti.state for ti in run.get_task_instances(session=session)}
        print(f"dag run {run.run_id}: {run.state}; tasks: {states}")
        if run.state != "success" or set(states) != {"train", "evaluate"} or any(s != "success" for s in states.values()):
            print("the DAG run did not succeed", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
