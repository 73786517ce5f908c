"""Artefacts written by an earlier version keep working: a model directory and a checkpoint written
by the landed version 5c32a57 (``tests/data/legacy-5c32a57``, made with that version's
``spark-submit jobs/train.py --input data/train.parquet --model-dir model --l2 0.001 --optimizer
lbfgs --max-iter 4 --checkpoint-dir ckpt --checkpoint-every 2`` in that directory) load and resume."""

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LEGACY = ROOT / "tests" / "data" / "legacy-5c32a57"


def test_a_5c32a57_model_directory_loads():
    from softmax_spark.io.model_io import load_model

    model = load_model(str(LEGACY / "model"))
    assert model.coef.shape == (3, 4) and model.intercept.shape == (3,)
    assert [int(c) for c in model.classes] == [0, 1, 2]
    assert np.isfinite(model.coef).all() and len(model.history) == 4


def test_a_5c32a57_checkpoint_resumes(spark, tmp_path, monkeypatch, capsys):
    """The same command (max_iter raised, which does not change the run) resumes the old run from
    its iteration-4 checkpoint instead of training from the start."""
    work = tmp_path / "legacy"
    shutil.copytree(LEGACY, work)
    monkeypatch.chdir(work)  # the run's options name relative paths, as the command above did
    spec = importlib.util.spec_from_file_location("softmax_spark_train_job_legacy", ROOT / "jobs" / "train.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    code = job.main(["--input", "data/train.parquet", "--model-dir", "model", "--overwrite", "--l2", "0.001",
                     "--optimizer", "lbfgs", "--max-iter", "6", "--checkpoint-dir", "ckpt",
                     "--checkpoint-every", "2"], spark=spark)
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    assert "resuming run 6e6468cca09b1b0e from ckpt/6e6468cca09b1b0e/ckpt-00000004" in out.out + out.err
    from softmax_spark.io.model_io import load_model

    assert len(load_model(os.path.join(work, "model")).history) == 6
