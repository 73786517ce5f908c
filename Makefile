# softmax_spark — every target creates .venv itself (python3 -m venv + editable install).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup test demo bench airflow-test dist clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .venv-executor .airflow build dist *.egg-info .pytest_cache demo_out

# The main job on the bundled dataset (scikit-learn's digits): train, then evaluate.
DEMO := demo_out
SPARK_SUBMIT := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PYSPARK_PYTHON="$(CURDIR)/$(PY)" spark-submit --master "local[2]"
demo: setup
	$(PY) jobs/make_demo_data.py --out $(DEMO)/data
	$(SPARK_SUBMIT) jobs/train.py --config conf/train.yaml \
		--input $(DEMO)/data/train.parquet --model-dir $(DEMO)/model --overwrite
	$(SPARK_SUBMIT) jobs/evaluate.py --config conf/evaluate.yaml --model-dir $(DEMO)/model \
		--input $(DEMO)/data/test.parquet --output $(DEMO)/predictions --overwrite
	@echo
	@echo "model:       $(DEMO)/model   (MLlib copy: $(DEMO)/model/mllib)"
	@echo "predictions: $(DEMO)/predictions   (Parquet)"
	@echo "metrics:     $(DEMO)/predictions.metrics.json"
	@echo "plots:       $(DEMO)/predictions.plots/"

# Airflow 3 + Spark provider in their own venv (.airflow/venv); scratch AIRFLOW_HOME in .airflow/run.
# DagBag import check, DAG unit tests, then `airflow dags test` of dags/softmax_pipeline.py on
# local Spark through .venv/bin/spark-submit, and a check of the model and predictions.
airflow-test: setup
	PYTHON=$(PYTHON) bash airflow/airflow_test.sh

# A wheel and an sdist in dist/ (PEP 517, through `build`; version from pyproject.toml), each with
# LICENSE; the wheel installs the console scripts softmax-spark-train / softmax-spark-evaluate; a copy
# of the wheel named .zip for spark-submit --py-files / addPyFile (which take .zip, .egg, .py only).
dist: setup
	rm -rf dist build *.egg-info
	$(PY) -m build --outdir dist .
	cd dist && for w in *.whl; do cp "$$w" "$${w%.whl}.zip"; done  # the same zip, named for --py-files
	@ls -l dist

# Side-by-side benchmark against MLlib (never part of `make test`): data under bench/data,
# results in bench/results/<name>.{json,md}. Smoke run: make bench BENCH_ARGS="--rows 20000 --repeats 1 --skip-scaling"
BENCH_ARGS ?=
bench: setup
	$(PY) bench/run.py --name latest $(BENCH_ARGS)
