#!/usr/bin/env bash
# End-to-end test of dags/softmax_pipeline.py (what `make airflow-test` runs):
#
#   1. the project venv (.venv) via `make setup`; it provides spark-submit, numpy and pyarrow;
#   2. the Airflow venv (.airflow/venv) from airflow/requirements.txt + airflow/constraints.txt,
#      rebuilt only when those files change (Airflow's Spark provider brings pyspark-client,
#      which must not share an environment with pyspark);
#   3. a scratch AIRFLOW_HOME (.airflow/run/home) with a SQLite metadata database;
#   4. DagBag loads dags/ with no import errors (airflow/check_dagbag.py), and the DAG's unit tests
#      pass (airflow/test_softmax_dag.py: templates, settings precedence, spark-submit command);
#   5. a small Parquet data set (airflow/make_test_data.py, project Python);
#   6. `airflow dags test` runs train >> evaluate against local-mode Spark through the project's
#      spark-submit, the connection coming from an AIRFLOW_CONN_ environment variable;
#   7. the model, the predictions and the metrics exist and load (airflow/verify_outputs.py).
#
# Exits non-zero on any failure. No webserver, scheduler or network beyond PyPI.
#
# Environment knobs:
#   SOFTMAX_JOBS_DIR     run the DAG with jobs_dir=<this> instead of the repo's jobs/ (stand-ins)
#   AIRFLOW_TEST_VERBOSE=1  print all of `airflow dags test` (default: a summary; all in the log)
#   AIRFLOW_VENV         where the Airflow venv lives (default: .airflow/venv)
#   PYTHON               interpreter that creates the Airflow venv (default: python3)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

PYTHON="${PYTHON:-python3}"
AF_VENV="${AIRFLOW_VENV:-$REPO/.airflow/venv}"
RUN="$REPO/.airflow/run"
PROJECT_PY="$REPO/.venv/bin/python"
SPARK_SUBMIT="$REPO/.venv/bin/spark-submit"
DAG_ID="softmax_spark_pipeline"
RUN_DATE="2025-06-01"

step() { printf '\n=== [airflow-test %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { printf 'airflow-test FAILED: %s\n' "$*" >&2; exit 1; }
T0=$SECONDS

# -- 1. project venv ---------------------------------------------------------------------------
step "project venv (make setup)"
make --no-print-directory setup
[[ -x "$SPARK_SUBMIT" ]] || die "$SPARK_SUBMIT missing after make setup"

# -- 2. Airflow venv ---------------------------------------------------------------------------
step "Airflow venv at ${AF_VENV#"$REPO"/}"
want_stamp="$(cat airflow/requirements.txt airflow/constraints.txt | sha256sum | cut -d' ' -f1) $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
stamp_file="$AF_VENV/.airflow-test-installed"
if [[ -x "$AF_VENV/bin/airflow" && -f "$stamp_file" && "$(cat "$stamp_file")" == "$want_stamp" ]]; then
    echo "up to date"
else
    t=$SECONDS
    if [[ -e "$AF_VENV" ]]; then
        [[ -f "$AF_VENV/pyvenv.cfg" ]] || die "$AF_VENV exists and is not a virtualenv; not replacing it"
        rm -rf "$AF_VENV"
    fi
    "$PYTHON" -m venv "$AF_VENV"
    "$AF_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r airflow/requirements.txt -c airflow/constraints.txt
    echo "$want_stamp" > "$stamp_file"
    echo "installed in $((SECONDS - t)) s"
fi
AF="$AF_VENV/bin/airflow"
AF_PY="$AF_VENV/bin/python"
# The two Spark distributions must stay apart: pyspark-client here, pyspark in .venv.
"$AF_PY" -c 'import importlib.metadata as m, sys; sys.exit(any(d.metadata["Name"].lower() == "pyspark" for d in m.distributions()))' \
    || die "the Airflow venv holds the pyspark distribution (only pyspark-client belongs there)"

# -- 3. scratch Airflow home -------------------------------------------------------------------
step "scratch AIRFLOW_HOME at ${RUN#"$REPO"/}/home"
rm -rf "$RUN"
mkdir -p "$RUN/home" "$RUN/data" "$RUN/out"

export AIRFLOW_HOME="$RUN/home"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$RUN/home/airflow.db"
export AIRFLOW__LOGGING__BASE_LOG_FOLDER="$RUN/home/logs"
# Local Spark, through the project's spark-submit (the connection extra may only name
# spark-submit/spark2-submit/spark3-submit; the full path goes in the DAG's Variable instead).
export AIRFLOW_CONN_SPARK_SOFTMAX_LOCAL='{"conn_type": "spark", "host": "local[2]", "extra": {"deploy-mode": "client", "spark-binary": "spark-submit"}}'
export AIRFLOW_VAR_SOFTMAX_SPARK_SPARK_CONN_ID=spark_softmax_local
export AIRFLOW_VAR_SOFTMAX_SPARK_SPARK_BINARY="$SPARK_SUBMIT"
export AIRFLOW_VAR_SOFTMAX_SPARK_PYSPARK_PYTHON="$PROJECT_PY"
export AIRFLOW_VAR_SOFTMAX_SPARK_OUTPUT_ROOT="$RUN/out"
export AIRFLOW_VAR_SOFTMAX_SPARK_DRIVER_MEMORY=1g
# A failing task is retried once, 5 s later, rather than twice after minutes: `airflow dags test`
# waits out retry delays.
export SOFTMAX_SPARK_RETRIES=1
export SOFTMAX_SPARK_RETRY_DELAY_SECONDS=5
# Spark binds to loopback only.
export SPARK_LOCAL_IP=127.0.0.1

"$AF" db migrate > "$RUN/db-migrate.log" 2>&1 || { tail -n 40 "$RUN/db-migrate.log" >&2; die "airflow db migrate"; }

# -- 4. DagBag ---------------------------------------------------------------------------------
step "DagBag import check"
"$AF_PY" airflow/check_dagbag.py "$REPO/dags"

step "DAG unit tests (airflow/test_softmax_dag.py)"
"$AF_PY" -m pytest airflow/test_softmax_dag.py -q -p no:cacheprovider

# -- 5. test data ------------------------------------------------------------------------------
step "test data"
"$PROJECT_PY" airflow/make_test_data.py "$RUN/data"

# -- 6. airflow dags test ----------------------------------------------------------------------
JOBS_DIR="${SOFTMAX_JOBS_DIR:-$REPO/jobs}"
for job in train.py evaluate.py; do
    [[ -f "$JOBS_DIR/$job" ]] || die "$JOBS_DIR/$job does not exist (set SOFTMAX_JOBS_DIR to test with stand-ins)"
done
# Params: training data goes in as a Variable, the rest as run conf (both routes get exercised).
export AIRFLOW_VAR_SOFTMAX_SPARK_INPUT_PATH="$RUN/data/train.parquet"
conf="$("$AF_PY" - "$RUN/data/eval.parquet" "${SOFTMAX_JOBS_DIR:-}" <<'EOF'
import json, sys
conf = {"eval_input_path": sys.argv[1], "spark_conf": {"spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4"}}
if sys.argv[2]:
    conf["jobs_dir"] = sys.argv[2]
print(json.dumps(conf))
EOF
)"
step "airflow dags test $DAG_ID $RUN_DATE (jobs: $JOBS_DIR)"
echo "conf: $conf"
t=$SECONDS
# The full output (task logs, Spark's own log) goes to dags-test.log; shown here are task starts
# and ends, state changes, spark-submit command lines and errors (AIRFLOW_TEST_VERBOSE=1: all).
show='\[DAG TEST\]|new_state=|Spark-Submit cmd|DagRun Finished|ERROR|Error|Exception|error:'
[[ "${AIRFLOW_TEST_VERBOSE:-0}" == 1 ]] && show='.'
set +e
"$AF" dags test "$DAG_ID" "$RUN_DATE" --conf "$conf" 2>&1 | tee "$RUN/dags-test.log" \
    | grep --line-buffered -E "$show" | grep --line-buffered -v 'No tasks to run' | cut -c1-400
rc=${PIPESTATUS[0]}
set -e
echo "airflow dags test: exit $rc after $((SECONDS - t)) s (full log: ${RUN#"$REPO"/}/dags-test.log)"
if [[ $rc -ne 0 ]]; then
    tail -n 60 "$RUN/dags-test.log" | cut -c1-400 >&2
    die "airflow dags test exited $rc (log: $RUN/dags-test.log)"
fi

# -- 7. outputs --------------------------------------------------------------------------------
step "verify outputs"
"$AF_PY" airflow/dagrun_state.py "$DAG_ID" "$RUN_DATE"
"$PROJECT_PY" airflow/verify_outputs.py \
    --model-dir "$RUN/out/models/$RUN_DATE" \
    --predictions "$RUN/out/predictions/$RUN_DATE" \
    --metrics "$RUN/out/metrics/$RUN_DATE.json" \
    --eval-input "$RUN/data/eval.parquet"

step "PASSED in $((SECONDS - T0)) s"
