"""MkDocs hooks (``mkdocs.yml`` → ``hooks:``): the pages generated from the code at build time.

- ``reference/cli.md``: every flag of ``jobs/train.py`` and ``jobs/evaluate.py``, from the option
  declarations in ``softmax_spark/fit/config.py`` (``TrainConfig``, ``EvaluateConfig``) — never
  hand-written — with the Estimator Param each option is (its ``param=``) and the solvers that read it.
- ``<!-- params-table -->`` in a page: the Params of ``softmax_spark.ml.SoftmaxRegression`` (name,
  default, meaning, MLlib's or ours, the job flag it is — from the same declarations), and the MLlib
  ``LogisticRegression`` Params it does not have.

Run ``python tools/docs_hooks.py`` to print the CLI page without building the site.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the checkout's package, not an installed copy
    sys.path.insert(0, ROOT)

CLI_PAGE = "reference/cli.md"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _type_name(tp) -> str:
    from softmax_spark.fit import config

    names = []
    for member in config._members(tp):
        names.append("any" if member is typing.Any else config._describe(member))
    return " or ".join(names)


def _flag_rows(cls) -> list[str]:
    from softmax_spark.fit import config

    hints = typing.get_type_hints(cls)
    rows = ["| flag | config key | type | default | Spark ML Param | meaning |", "|---|---|---|---|---|---|",
            "| `--config FILE` | — | path | — | — | YAML mapping with the keys below; flags given on the command line override it |"]
    for f in config._option_fields(cls):
        members = config._members(hints[f.name])
        flag = config._flag(f.name)
        if members == [bool]:
            if f.metadata.get("negatable", True):
                flag = f"{flag} / --no-{flag[2:]}"
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "—")
        meaning = f.metadata.get("help", "")
        if f.metadata.get("choices"):
            meaning += " (one of: " + ", ".join(f"`{c}`" for c in f.metadata["choices"]) + ")"
        if f.metadata.get("solvers"):
            meaning += " [read by: " + ", ".join(f"`{v}`" for v in f.metadata["solvers"]) + "]"
        param = f"`{f.metadata['param']}`" if f.metadata.get("param") else "—"
        rows.append(f"| `{_cell(flag)}` | `{f.name}` | {_cell(_type_name(hints[f.name]))} | "
                    f"`{_cell(repr(default) if isinstance(default, str) else default)}` | {param} | {_cell(meaning)} |")
    return rows


def cli_markdown() -> str:
    from softmax_spark.fit.config import EvaluateConfig, TrainConfig

    out = [
        "# CLI reference",
        "",
        "<!-- Generated at build time by tools/docs_hooks.py from softmax_spark/fit/config.py; do not edit. -->",
        "",
        "Both jobs run under `spark-submit`; `python jobs/train.py --help` prints the same list without Spark.",
        "Every flag is also a key of the YAML file given with `--config`: the flag without `--`, with `_`",
        "for `-` (`--batch-fraction` → `batch_fraction`). Flags override the file. Flags are matched",
        "exactly: an abbreviation (`--max-it`) is an unknown flag, and an unknown flag or key exits 2",
        "with one line and a \"did you mean\" when a known one is close. A YAML `null` means \"not given\".",
        "",
        "## jobs/train.py",
        "",
        "`spark-submit jobs/train.py --input TRAIN.parquet --model-dir MODEL_DIR [flags]`"
        " — see [Training and solvers](../guide/training.md).",
        "",
        *_flag_rows(TrainConfig),
        "",
        "## jobs/evaluate.py",
        "",
        "`spark-submit jobs/evaluate.py --model-dir MODEL_DIR --input TEST.parquet --output OUT [flags]`"
        " — see [Evaluation and plots](../guide/evaluation.md).",
        "",
        *_flag_rows(EvaluateConfig),
        "",
    ]
    return "\n".join(out)


def params_markdown() -> str:
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.param import Param

    from softmax_spark.sparkml.classification import SoftmaxRegression

    from softmax_spark.fit.config import param_to_option

    est = SoftmaxRegression()
    mllib = {n for n in dir(LogisticRegression) if isinstance(getattr(LogisticRegression, n, None), Param)}
    options = param_to_option()
    rows = ["| Param | default | MLlib's | job flag | meaning |", "|---|---|---|---|---|"]
    for p in sorted(est.params, key=lambda p: p.name.lower()):
        default = f"`{est.getOrDefault(p)!r}`" if est.hasDefault(p) else "not set"
        flag = f"`--{options[p.name].replace('_', '-')}`" if p.name in options else "—"
        rows.append(f"| `{p.name}` | {_cell(default)} | {'yes' if p.name in mllib else 'ours'} | {flag} | "
                    f"{_cell(p.doc)} |")
    rows += ["", "The job flag is the option the Param sets (one declaration in `softmax_spark/fit/config.py`); "
             "regParam is `--l2` rescaled: λ = regParam / 2 for a multinomial model, regParam for a binomial one."]
    missing = sorted(mllib - {p.name for p in est.params})
    rows += ["", "MLlib `LogisticRegression` Params that `SoftmaxRegression` does not have: "
             + (", ".join(f"`{n}`" for n in missing) if missing else "none") + "."]
    return "\n".join(rows)


# -- MkDocs events ------------------------------------------------------------------------------
def on_files(files, config):
    from mkdocs.structure.files import File

    files.append(File.generated(config, CLI_PAGE, content=cli_markdown()))
    return files


def on_page_markdown(markdown, page, config, files):
    marker = "<!-- params-table -->"
    if marker in markdown:
        markdown = markdown.replace(marker, params_markdown())
    return markdown


if __name__ == "__main__":
    print(cli_markdown())
