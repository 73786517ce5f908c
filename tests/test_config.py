"""Flag and config-file rules of both jobs (issue 16 item 4), without Spark.

* no abbreviations: a prefix of a flag is an unknown flag (``--max-it`` is not ``--max-iter``);
* an unknown flag or key gets a "did you mean" suggestion;
* one key spelling in both conf files: the flag without ``--``, ``-`` → ``_``; the old dashed
  spelling (``conf/evaluate.yaml`` before) is still read, with a deprecation warning;
* ``EvaluateConfig.inherit_from_model`` fills the feature and label settings left unset.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from softmax_spark.fit.config import EvaluateConfig, TrainConfig, config_from_dict, parse_config
from softmax_spark.core.errors import InputError

REPO = Path(__file__).resolve().parents[1]
TRAIN = ["--input", "data.parquet", "--model-dir", "model"]
EVALUATE = ["--model-dir", "m", "--input", "i", "--output", "o"]


def test_abbreviated_flags_are_refused_with_the_full_names():
    """The issue's command: every abbreviation was silently taken for the full flag."""
    with pytest.raises(InputError) as info:
        parse_config(TrainConfig, [*TRAIN, "--label", "cultivar", "--batch", "0.5", "--optim", "sgd", "--max-it", "3"])
    assert str(info.value) == (
        "unrecognized arguments: --label cultivar --batch 0.5 --optim sgd --max-it 3; "
        "--label: did you mean --label-col?; --batch: did you mean --batch-fraction?; "
        "--optim: did you mean --optimizer?; --max-it: did you mean --max-iter?"
    )
    # the full names still work
    cfg = parse_config(TrainConfig, [*TRAIN, "--label-col", "cultivar", "--batch-fraction", "0.5",
                                     "--optimizer", "sgd", "--max-iter", "3"])
    assert (cfg.label_col, cfg.batch_fraction, cfg.optimizer, cfg.max_iter) == ("cultivar", 0.5, "sgd", 3)


@pytest.mark.parametrize("cls, base, flag, expected", [
    (TrainConfig, TRAIN, "--max-iters=5", "unrecognized arguments: --max-iters=5; --max-iters: did you mean --max-iter?"),
    (TrainConfig, TRAIN, "--lable-col=y", "unrecognized arguments: --lable-col=y; --lable-col: did you mean --label-col?"),
    (TrainConfig, TRAIN, "--colour=red", "unrecognized arguments: --colour=red"),  # nothing close
    (EvaluateConfig, EVALUATE, "--no-plot", "unrecognized arguments: --no-plot; --no-plot: did you mean --no-plots?"),
    (EvaluateConfig, EVALUATE, "--metric-out=m.json",
     "unrecognized arguments: --metric-out=m.json; --metric-out: did you mean --metrics-out?"),
])
def test_unknown_flag_did_you_mean(cls, base, flag, expected, capsys):
    with pytest.raises(InputError) as info:
        parse_config(cls, [*base, flag], prog="job")
    assert str(info.value) == expected
    # a one-line usage pointer goes before the error line, not argparse's 40-flag usage
    assert capsys.readouterr().err.strip() == (
        "usage: job [--config FILE] [--flag VALUE ...]; job --help lists every flag")


def test_unknown_config_key_did_you_mean(tmp_path):
    with pytest.raises(InputError, match=r"unknown key 'max_iters' \(did you mean 'max_iter'\?\); known keys: "):
        config_from_dict(TrainConfig, {"max_iters": 5})
    with pytest.raises(InputError, match=r"unknown key 'metric_out' \(did you mean 'metrics_out'\?\)"):
        config_from_dict(EvaluateConfig, {"metric_out": "m.json"})


@pytest.mark.parametrize("name, cls", [("train.yaml", TrainConfig), ("evaluate.yaml", EvaluateConfig)])
def test_both_conf_files_use_the_flag_names_with_underscores(name, cls, caplog):
    """Every key (set or commented out) in conf/*.yaml is a field name: the flag without ``--``
    and with ``_`` for ``-``; both files parse without a deprecation warning."""
    text = (REPO / "conf" / name).read_text()
    keys = list(yaml.safe_load(text))
    # the commented-out examples too: "# key: value" lines
    keys += [line.lstrip("# ").split(":")[0] for line in text.splitlines()
             if line.startswith("# ") and ":" in line and " " not in line.lstrip("# ").split(":")[0]
             and not line.lstrip("# ").startswith(("conf/", "spark-submit"))]
    fields = {f for f in cls.__dataclass_fields__}
    assert keys and all("-" not in key and key in fields for key in keys), [k for k in keys if k not in fields]
    with caplog.at_level(logging.WARNING, logger="softmax_spark"):
        parse_config(cls, ["--config", str(REPO / "conf" / name), *(TRAIN if cls is TrainConfig else EVALUATE)])
    assert "deprecated" not in caplog.text


def test_dashed_keys_still_read_with_a_deprecation_warning(tmp_path, caplog):
    config = tmp_path / "evaluate.yaml"
    config.write_text("unknown-labels: ignore\nno-plots: true\nprediction_col: pred\n")
    with caplog.at_level(logging.WARNING, logger="softmax_spark"):
        cfg = parse_config(EvaluateConfig, ["--config", str(config), *EVALUATE])
    assert cfg.unknown_labels == "ignore" and cfg.no_plots and cfg.prediction_col == "pred"
    assert (f"config file {config}: keys with '-' are deprecated, write the flag's name with '_': "
            "'unknown-labels' → 'unknown_labels', 'no-plots' → 'no_plots'") in caplog.text


def test_evaluate_takes_unset_feature_and_label_settings_from_the_model():
    options = {"features_col": "features", "feature_cols": ["x0", "x1"], "label_col": "variety"}
    cfg = parse_config(EvaluateConfig, EVALUATE)
    assert cfg.inherit_from_model(options) == ["feature_cols x0,x1", "label_col variety"]
    assert cfg.feature_spec.columns == ["x0", "x1"] and cfg.label_col == "variety"
    assert not cfg.label_col_required  # the model's label: an input without it is scored, and said

    cfg = parse_config(EvaluateConfig, [*EVALUATE, "--features-col", "f", "--label-col", "y"])
    assert cfg.inherit_from_model(options) == []  # given settings win
    assert cfg.feature_spec.columns == ["f"] and cfg.label_col == "y" and cfg.label_col_required

    cfg = parse_config(EvaluateConfig, EVALUATE)
    assert cfg.inherit_from_model({"features_col": "vec", "feature_cols": None, "label_col": "label"}) == [
        "features_col vec", "label_col label"]
    assert cfg.feature_spec.columns == ["vec"]
    cfg = parse_config(EvaluateConfig, EVALUATE)
    assert cfg.inherit_from_model({}) == [] and cfg.feature_spec.columns == ["features"]  # a model without options


# -- issue 24 item 7: non-finite numbers, YAML aliases, quoted values ----------------------------
@pytest.mark.parametrize("extra,flag", [(["--l2", "inf"], "--l2"), (["--learning-rate", "inf"], "--learning-rate"),
                                        (["--tol", "nan"], "--tol"), (["--momentum", "nan"], "--momentum")])
def test_non_finite_numbers_are_refused(extra, flag):
    with pytest.raises(InputError) as info:
        parse_config(TrainConfig, [*TRAIN, *extra])
    assert str(info.value).startswith(f"{flag} must be") and "\n" not in str(info.value)


@pytest.mark.parametrize("weights", ["{0: .nan, 1: 1.0}", "{0: .inf, 1: 1.0}", "{0: true, 1: 1.0}"])
def test_class_weight_map_values_must_be_finite(tmp_path, weights):
    conf = tmp_path / "c.yaml"
    conf.write_text(f"class_weight: {weights}\n")
    with pytest.raises(InputError, match="class_weight map values must be finite numbers ≥ 0"):
        parse_config(TrainConfig, [*TRAIN, "--config", str(conf)])


def test_yaml_aliases_are_refused_and_quoted_values_are_cut(tmp_path):
    """348 bytes of nested aliases expanded to a 5.8 MB error line; now one short line."""
    lines = ['a: &a ["xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx"]']
    for prev, name in zip("abcdef", "bcdefg"):
        lines.append(f"{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]")
    lines.append("max_iter: *g")
    conf = tmp_path / "bomb.yaml"
    conf.write_text("\n".join(lines) + "\n")
    assert conf.stat().st_size < 600
    with pytest.raises(InputError) as info:
        parse_config(TrainConfig, [*TRAIN, "--config", str(conf)])
    message = str(info.value)
    assert "\n" not in message and len(message) < 300 and "alias" in message, message[:500]
    conf.write_text("max_iter: [" + ", ".join(["123456789"] * 10000) + "]\n")  # a long value, no alias
    with pytest.raises(InputError) as info:
        parse_config(TrainConfig, [*TRAIN, "--config", str(conf)])
    assert len(str(info.value)) < 300 and "config key 'max_iter'" in str(info.value)


def test_the_fault_injection_is_no_flag_of_the_job():
    """Issue 24 item 7: the test-only --fail-first-attempt-dir was a public flag."""
    with pytest.raises(InputError, match="unrecognized arguments: --fail-first-attempt-dir"):
        parse_config(TrainConfig, [*TRAIN, "--fail-first-attempt-dir", "/tmp/x"])
