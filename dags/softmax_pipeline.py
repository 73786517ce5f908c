"""Airflow 3 DAG: train a softmax regression model with Spark, then score a dataset with it.

Two ``spark-submit`` tasks run one after the other::

    train     jobs/train.py    --input <train data> --model-dir <root>/models/<run date> [--overwrite] ...
    evaluate  jobs/evaluate.py --model-dir <same> --input <eval data>
                               --output <root>/predictions/<run date>
                               --metrics-out <root>/metrics/<run date>.json [--overwrite] ...

Nothing machine-specific is written here. Every setting is looked up at run time, in this order:

1. the DAG param of that name (trigger form, ``airflow dags trigger -c``, ``airflow dags test -c``);
2. the Airflow Variable ``softmax_spark_<name>`` (e.g. ``AIRFLOW_VAR_SOFTMAX_SPARK_OUTPUT_ROOT``);
3. a built-in default, where there is one.

=================  ==========================================  ====================================
setting            meaning                                     default
=================  ==========================================  ====================================
input_path         training data: Parquet, ``features``        none (required)
                   array<double> + ``label``
eval_input_path    data the evaluate task scores               ``input_path``
output_root        models/, predictions/, metrics/ go here     none (required)
jobs_dir           directory holding train.py / evaluate.py    the ``jobs/`` beside this ``dags/``
spark_conn_id      Airflow connection (type ``spark``)         ``spark_default``
train_config       ``--config`` for train.py                   not passed (the job's own default)
eval_config        ``--config`` for evaluate.py                not passed
driver_memory      ``spark.driver.memory``                     not set
=================  ==========================================  ====================================

Two settings are Variables only: they describe the worker machine rather than a run.

* ``softmax_spark_spark_binary``: path of the ``spark-submit`` to run. Without it the connection
  decides (its ``spark-binary`` extra may only be ``spark-submit``, ``spark2-submit`` or
  ``spark3-submit``, looked up on ``PATH``; the provider refuses paths and ``spark-home`` there).
* ``softmax_spark_pyspark_python``: exported as ``PYSPARK_PYTHON`` to ``spark-submit``.

Params only: ``overwrite`` (default true, so a retry or a re-run of the same date replaces that
date's model and predictions), ``l2``, ``optimizer``, ``train_extra_args`` / ``eval_extra_args``
(extra command-line words, split like a shell would) and ``spark_conf`` (extra ``--conf`` pairs).

Each task is retried ``SOFTMAX_SPARK_RETRIES`` times (default 2), first after
``SOFTMAX_SPARK_RETRY_DELAY_SECONDS`` (default 120, doubling up to 15 minutes): environment variables
of the process that parses this file, read at parse time.

The run date is ``ds`` (the logical date); a run triggered without a logical date uses the date of
its ``run_after`` instead. A job that exits with code 2 (bad input) fails at once without retries;
any other failure is retried.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param
from airflow.sdk.exceptions import AirflowException, AirflowFailException

DAG_ID = "softmax_spark_pipeline"
VARIABLE_PREFIX = "softmax_spark_"

# The repository's jobs/ directory, found from this file, so any clone works unchanged. A deployment
# that copies dags/ elsewhere sets the jobs_dir param or the softmax_spark_jobs_dir Variable.
DEFAULT_JOBS_DIR = str(Path(__file__).resolve().parent.parent / "jobs")

# Exit code the jobs use for "bad input": retrying cannot help.
BAD_INPUT_EXIT_CODE = 2

# Retries are fixed when the file is parsed, so they cannot come from params or templates. The
# environment of the DAG processor can change them (the end-to-end test shortens the delay).
RETRIES = int(os.environ.get("SOFTMAX_SPARK_RETRIES", "2"))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("SOFTMAX_SPARK_RETRY_DELAY_SECONDS", "120")))


def _setting(name: str, default: str | None = None, *, param: bool = True) -> str:
    """A Jinja expression: DAG param ``name``, else Variable ``softmax_spark_<name>``, else ``default``.

    Without a default, a missing Variable fails the task when the template is rendered, naming it.
    """
    variable = VARIABLE_PREFIX + name
    if default is None:
        fallback = f"var.value.{variable}"
    else:
        fallback = f"var.value.get({variable!r}, {default!r})"
    if not param:
        return "{{ %s }}" % fallback
    # A param left null or set to "" falls back to the Variable (and then the default).
    return "{{ params.%s if params.%s not in (none, '') else %s }}" % (name, name, fallback)


RUN_DATE = "{{ ds if ds is defined else dag_run.run_after.strftime('%Y-%m-%d') }}"
OUTPUT_ROOT = _setting("output_root")
MODEL_DIR = f"{OUTPUT_ROOT}/models/{RUN_DATE}"
PREDICTIONS_DIR = f"{OUTPUT_ROOT}/predictions/{RUN_DATE}"
METRICS_FILE = f"{OUTPUT_ROOT}/metrics/{RUN_DATE}.json"
JOBS_DIR = _setting("jobs_dir", DEFAULT_JOBS_DIR)
TRAIN_INPUT = _setting("input_path")
EVAL_INPUT = (
    "{{ params.eval_input_path if params.eval_input_path not in (none, '') else "
    f"var.value.get({VARIABLE_PREFIX + 'eval_input_path'!r}, '') or "
    f"(params.input_path if params.input_path not in (none, '') else var.value.{VARIABLE_PREFIX}input_path) }}}}"
)
OVERWRITE = "{{ params.overwrite }}"

_TRUE_WORDS = {"true", "1", "yes", "on"}


class SoftmaxSparkSubmitOperator(SparkSubmitOperator):
    """``SparkSubmitOperator`` whose connection, binary and optional arguments are templated too.

    The provider templates ``application``, ``conf``, ``application_args``, ``env_vars`` and ``name``
    but not ``conn_id`` or ``spark_binary``; this subclass renders ``spark_conn_id`` and
    ``spark_binary_path`` and hands them to the hook. After rendering:

    * ``optional_args`` ``{"--flag": value}`` adds ``--flag value`` for each non-empty value;
    * ``switches`` ``{"--flag": value}`` adds ``--flag`` when the value renders true;
    * ``extra_args`` is split like a shell command line and appended;
    * ``conf`` and ``env_vars`` entries that render empty are dropped, and the DAG param
      ``spark_conf`` (a mapping) is merged into ``conf``.

    A spark-submit exit code 2 (the jobs' "bad input") raises ``AirflowFailException``: no retry.
    """

    template_fields = (
        *SparkSubmitOperator.template_fields,
        "spark_conn_id",
        "spark_binary_path",
        "optional_args",
        "switches",
        "extra_args",
    )

    def __init__(
        self,
        *,
        spark_conn_id: str = "spark_default",
        spark_binary_path: str = "",
        optional_args: dict[str, Any] | None = None,
        switches: dict[str, Any] | None = None,
        extra_args: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spark_conn_id = spark_conn_id
        self.spark_binary_path = spark_binary_path
        self.optional_args = optional_args or {}
        self.switches = switches or {}
        self.extra_args = extra_args

    def _final_arguments(self) -> list[str]:
        args = [str(a) for a in (self.application_args or [])]
        for flag, value in self.optional_args.items():
            if value is not None and str(value).strip() not in ("", "None"):
                args += [flag, str(value).strip()]
        for flag, value in self.switches.items():
            if str(value).strip().lower() in _TRUE_WORDS:
                args.append(flag)
        args += shlex.split(self.extra_args or "")
        return args

    @staticmethod
    def _non_empty(mapping: Mapping[Any, Any] | None) -> dict[str, str]:
        return {str(k): str(v) for k, v in (mapping or {}).items() if v is not None and str(v) != ""}

    def execute(self, context: Any) -> None:
        self.application_args = self._final_arguments()
        extra_conf = context["params"].get("spark_conf") or {}
        if not isinstance(extra_conf, Mapping):
            raise AirflowFailException(f"param spark_conf must be a mapping, got {extra_conf!r}")
        self.conf = self._non_empty({**(self.conf or {}), **extra_conf})
        self.env_vars = self._non_empty(self.env_vars) or None
        # The provider keeps these two privately and reads them when it builds its hook.
        self._conn_id = (self.spark_conn_id or "").strip() or "spark_default"
        self._spark_binary = (self.spark_binary_path or "").strip() or None
        self._hook = None
        try:
            super().execute(context)
        except AirflowException as exc:
            if self._exit_code(exc) == BAD_INPUT_EXIT_CODE:
                # The hook's message ends with the job's last output line: its "error: ..." line.
                lines = str(exc).strip().splitlines()
                raise AirflowFailException(
                    f"{self.application} rejected its input (exit code {BAD_INPUT_EXIT_CODE}), "
                    f"not retrying: {lines[-1] if lines else ''}"
                ) from exc
            raise

    def _exit_code(self, exc: BaseException) -> int | None:
        process = getattr(self._hook, "_submit_sp", None)
        code = getattr(process, "returncode", None)
        if isinstance(code, int):
            return code
        match = re.search(r"Error code is: (-?\d+)", str(exc))
        return int(match.group(1)) if match else None


with DAG(
    dag_id=DAG_ID,
    description="Train a softmax regression model on Spark, then score data with it",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two trainings at once would fight over the same cores
    tags=["softmax_spark", "spark"],
    doc_md=__doc__,
    default_args={
        "owner": "softmax_spark",
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        "execution_timeout": timedelta(hours=3),
    },
    params={
        "input_path": Param(
            None, type=["null", "string"],
            description="Training data (Parquet: features array<double>, label). "
            "Empty: Variable softmax_spark_input_path.",
        ),
        "eval_input_path": Param(
            None, type=["null", "string"],
            description="Data to score. Empty: Variable softmax_spark_eval_input_path, else the training data.",
        ),
        "output_root": Param(
            None, type=["null", "string"],
            description="Root of models/<date>, predictions/<date>, metrics/<date>.json. "
            "Empty: Variable softmax_spark_output_root.",
        ),
        "jobs_dir": Param(
            None, type=["null", "string"],
            description="Directory with train.py and evaluate.py. "
            "Empty: Variable softmax_spark_jobs_dir, else the repository's jobs/.",
        ),
        "spark_conn_id": Param(
            None, type=["null", "string"],
            description="Spark connection id. Empty: Variable softmax_spark_spark_conn_id, else spark_default.",
        ),
        "train_config": Param(None, type=["null", "string"], description="--config for train.py"),
        "eval_config": Param(None, type=["null", "string"], description="--config for evaluate.py"),
        "driver_memory": Param(None, type=["null", "string"], description="spark.driver.memory, e.g. 2g"),
        "overwrite": Param(True, type="boolean", description="Replace this date's model and predictions"),
        "l2": Param(None, type=["null", "number"], minimum=0, description="--l2 for train.py"),
        "optimizer": Param(None, type=["null", "string"], enum=[None, "lbfgs", "sgd"],
                           description="--optimizer for train.py"),
        "train_extra_args": Param("", type="string", description="More train.py arguments (shell words)"),
        "eval_extra_args": Param("", type="string", description="More evaluate.py arguments (shell words)"),
        "spark_conf": Param({}, type="object", description="Extra Spark properties, e.g. {\"spark.sql.shuffle.partitions\": \"8\"}"),
    },
) as dag:

    def common() -> dict[str, Any]:
        """Arguments both tasks share (fresh dicts for each task)."""
        return {
            "spark_conn_id": _setting("spark_conn_id", "spark_default"),
            "spark_binary_path": _setting("spark_binary", "", param=False),
            "env_vars": {"PYSPARK_PYTHON": _setting("pyspark_python", "", param=False)},
            "conf": {"spark.driver.memory": _setting("driver_memory", "")},
            "switches": {"--overwrite": OVERWRITE},
        }

    train = SoftmaxSparkSubmitOperator(
        task_id="train",
        name="softmax-train-{{ run_id }}",
        application=f"{JOBS_DIR}/train.py",
        application_args=["--input", TRAIN_INPUT, "--model-dir", MODEL_DIR],
        optional_args={
            "--config": _setting("train_config", ""),
            "--l2": "{{ params.l2 if params.l2 is not none else '' }}",
            "--optimizer": "{{ params.optimizer or '' }}",
        },
        extra_args="{{ params.train_extra_args }}",
        doc_md="Fit the model on the training data; writes the model directory for the run date.",
        **common(),
    )

    evaluate = SoftmaxSparkSubmitOperator(
        task_id="evaluate",
        name="softmax-evaluate-{{ run_id }}",
        application=f"{JOBS_DIR}/evaluate.py",
        application_args=[
            "--model-dir", MODEL_DIR,
            "--input", EVAL_INPUT,
            "--output", PREDICTIONS_DIR,
            "--metrics-out", METRICS_FILE,
        ],
        optional_args={"--config": _setting("eval_config", "")},
        extra_args="{{ params.eval_extra_args }}",
        doc_md="Score the evaluation data with the run date's model; writes predictions and metrics.",
        **common(),
    )

    train >> evaluate
