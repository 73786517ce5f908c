"""Checkpoint files (``io.checkpoint``): atomic save, newest-first restore, damaged ones skipped."""

import os

import numpy as np

from softmax_spark.io import checkpoint


def test_save_and_restore_the_newest(tmp_path):
    d = str(tmp_path)
    for it in (1, 2, 3):
        checkpoint.save_checkpoint(d, it, {"theta": np.full(4, float(it))}, {"step": it}, [{"iteration": it}], "abc")
    ck = checkpoint.latest_checkpoint(d, "abc", n_params=4)
    assert ck.iteration == 3 and ck.scalars == {"step": 3} and ck.history == [{"iteration": 3}]
    np.testing.assert_array_equal(ck.arrays["theta"], np.full(4, 3.0))
    assert checkpoint.latest_checkpoint(d, "other") is None


def test_damaged_checkpoints_are_skipped(tmp_path, capsys):
    d = str(tmp_path)
    checkpoint.save_checkpoint(d, 1, {"theta": np.zeros(2)}, {}, [], "run")
    checkpoint.save_checkpoint(d, 2, {"theta": np.array([np.nan, 0.0])}, {}, [], "run")
    assert checkpoint.latest_checkpoint(d, "run", n_params=2).iteration == 1
    assert "skipping damaged checkpoint" in capsys.readouterr().out
    os.remove(os.path.join(d, "run", "ckpt-00000001", "arrays.npz"))
    assert checkpoint.latest_checkpoint(d, "run", n_params=2) is None


def test_finish_run_and_fingerprint(tmp_path):
    d = str(tmp_path)
    checkpoint.save_checkpoint(d, 1, {"theta": np.zeros(2)}, {}, [], "run")
    checkpoint.finish_run(d, "run", converged=False)
    assert checkpoint.latest_checkpoint(d, "run") is not None
    checkpoint.finish_run(d, "run", converged=True)
    assert checkpoint.latest_checkpoint(d, "run") is None
    assert checkpoint.fingerprint({"a": 1, "b": 2}) == checkpoint.fingerprint({"b": 2, "a": 1})
    assert len(checkpoint.fingerprint({"a": 1})) == 16
