"""Every ```python block of README.md and docs/**/*.md runs (so no example rots); the generated
docs pages cover every option and module. The convention, for writers (docs/contributing.md):

- The blocks of one page run in order in one namespace, so a later block may use an earlier one's
  names. The namespace starts with ``spark`` (the suite's local[2] session; started only for a page
  whose code says ``spark``), and the current directory is a fresh temporary one holding the demo
  data: ``data/train.parquet`` and ``data/test.parquet`` (scikit-learn's digits as ``make demo``
  writes them: ``id``, ``features`` array<double>, ``label`` long). Write outputs under ``out/``.
- A block that must not run (it needs a cluster, a remote service, …) has the line
  ``<!-- skip-example -->`` as the last non-blank line before its fence. Use it sparingly.
- ```bash / ```sh / ```text blocks are never run.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_MARKER = "<!-- skip-example -->"
_FENCE = re.compile(r"^```(\w*)\s*$")


def doc_files() -> list[str]:
    files = [os.path.join(ROOT, "README.md")]
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    return files


def python_blocks(path: str) -> list[tuple[int, str, bool]]:
    """(first line number, code, skipped) of each top-level ```python block of a Markdown file."""
    blocks, lines = [], open(path, encoding="utf-8").read().split("\n")
    i, last_text = 0, ""
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m:
            lang, start = m.group(1).lower(), i + 1
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
            if lang in ("python", "py"):
                blocks.append((start + 1, "\n".join(lines[start:i]) + "\n", last_text.strip() == SKIP_MARKER))
            last_text = ""
        elif lines[i].strip():
            last_text = lines[i]
        i += 1
    return blocks


def _pages_with_code() -> list[str]:
    return [os.path.relpath(p, ROOT) for p in doc_files() if any(not s for _, _, s in python_blocks(p))]


def _uses_spark(page: str) -> bool:
    """Whether a page's examples name ``spark`` (then they run with the session: marked ``spark``)."""
    return any(re.search(r"\bspark\b", code) for _, code, skipped in python_blocks(os.path.join(ROOT, page))
               if not skipped)


def _page_params():
    """Each page with code, marked ``spark`` when its examples use the session (the fixture is
    requested at run time, which the conftest's marking by fixture name cannot see)."""
    return [pytest.param(page, marks=pytest.mark.spark) if _uses_spark(page) else page for page in _pages_with_code()]


def _write_demo_data(directory: str) -> None:
    import pyarrow.parquet as pq

    spec = importlib.util.spec_from_file_location("make_demo_data", os.path.join(ROOT, "jobs", "make_demo_data.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train, test = module.digits_tables()
    os.makedirs(directory, exist_ok=True)
    pq.write_table(train, os.path.join(directory, "train.parquet"))
    pq.write_table(test, os.path.join(directory, "test.parquet"))


@pytest.mark.parametrize("page", _page_params())
def test_page_examples_run(page, request, tmp_path, monkeypatch):
    path = os.path.join(ROOT, page)
    blocks = [(line, code) for line, code, skipped in python_blocks(path) if not skipped]
    _write_demo_data(str(tmp_path / "data"))
    scope = {"__name__": "__docs_example__"}
    spark = request.getfixturevalue("spark") if _uses_spark(page) else None
    monkeypatch.chdir(tmp_path)
    with _spark_working_directory(spark, str(tmp_path)), _logging_restored():
        if spark is not None:
            scope["spark"] = spark
        for line, code in blocks:
            # line numbers in tracebacks point into the Markdown file
            exec(compile("\n" * (line - 1) + code, path, "exec"), scope)


@contextlib.contextmanager
def _logging_restored():
    """A page may set the ``softmax_spark`` logger's level (the install page shows how to quiet
    it): restored afterwards, so no later test loses the log lines it reads."""
    import logging

    logger = logging.getLogger("softmax_spark")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@contextlib.contextmanager
def _spark_working_directory(spark, directory: str):
    """Relative paths given to Spark (``spark.read.parquet("data/…")``, ``Model.load("out/…")``)
    resolve against the local Hadoop FileSystem's working directory — the JVM's start directory,
    not Python's current one — so it is pointed at the page's scratch directory meanwhile."""
    if spark is None:
        yield
        return
    jvm = spark._jvm
    fs = jvm.org.apache.hadoop.fs.FileSystem.getLocal(spark._jsc.hadoopConfiguration())
    before = fs.getWorkingDirectory()
    fs.setWorkingDirectory(jvm.org.apache.hadoop.fs.Path("file://" + os.path.abspath(directory)))
    try:
        yield
    finally:
        fs.setWorkingDirectory(before)


def test_examples_are_found_and_markers_are_used_sparingly():
    readme = python_blocks(os.path.join(ROOT, "README.md"))
    assert len([b for b in readme if not b[2]]) >= 2, "README's Spark ML and Python examples must run"
    skipped = [(p, line) for p in doc_files() for line, _, s in python_blocks(p) if s]
    total = sum(len(python_blocks(p)) for p in doc_files())
    assert len(skipped) <= max(3, total // 5), f"too many skipped examples: {skipped}"
    for p in doc_files():  # a marker must sit right before a python fence, else it is a typo
        text = open(p, encoding="utf-8").read()
        for m in re.finditer(re.escape(SKIP_MARKER) + r"\s*\n(\s*\n)*(?P<next>[^\n]*)", text):
            assert m.group("next").startswith("```python"), f"{p}: {SKIP_MARKER} not before a ```python fence"


def test_cli_page_lists_every_flag():
    """The CLI reference is generated from config.py, so every option of both jobs is on it."""
    import dataclasses

    from softmax_spark.fit.config import EvaluateConfig, TrainConfig

    spec = importlib.util.spec_from_file_location("docs_hooks", os.path.join(ROOT, "tools", "docs_hooks.py"))
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = hooks.cli_markdown()
    train, evaluate = page.split("## jobs/evaluate.py")
    for cls, part in ((TrainConfig, train), (EvaluateConfig, evaluate)):
        for f in dataclasses.fields(cls):
            if f.init:
                assert f"`--{f.name.replace('_', '-')}" in part, (cls.__name__, f.name)
    assert "| `regParam` |" in hooks.params_markdown()


def test_every_module_is_in_the_api_reference():
    """Each module of softmax_spark has a ``::: softmax_spark.<module>`` directive in docs/reference/api."""
    documented = set()
    for p in glob.glob(os.path.join(ROOT, "docs", "reference", "api", "*.md")):
        documented |= set(re.findall(r"^::: (softmax_spark[\w.]*)", open(p, encoding="utf-8").read(), re.M))
    modules = set()
    for p in glob.glob(os.path.join(ROOT, "softmax_spark", "**", "*.py"), recursive=True):
        rel = os.path.relpath(p, ROOT)[:-3].replace(os.sep, ".")
        modules.add(rel[: -len(".__init__")] if rel.endswith(".__init__") else rel)
    assert not sorted(modules - documented), f"modules missing from docs/reference/api: {sorted(modules - documented)}"
