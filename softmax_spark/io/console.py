"""The ``softmax_spark`` logger on the console: INFO lines on stdout as ``softmax_spark: <msg>``
(the per-iteration line users watch, under spark-submit too), warnings and errors on stderr.

Set up by the jobs (``cli.jobs_common.run_job``) and by ``fit.training.train``; a library user's
own logging configuration (a handler on the logger) always wins.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["use_console"]


class _ConsoleHandler(logging.Handler):
    """INFO records to the current ``sys.stdout`` as ``softmax_spark: <msg>``, WARNING and above to
    ``sys.stderr`` (looked up at each record, so captured or redirected streams get them)."""

    def emit(self, record):
        try:
            message = record.getMessage()
            if record.levelno >= logging.WARNING:
                stream, line = sys.stderr, f"softmax_spark {record.levelname}: {message}"
            else:
                stream, line = sys.stdout, f"softmax_spark: {message}"
            stream.write(line + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never break training
            self.handleError(record)


def use_console() -> None:
    """Show the ``softmax_spark`` logger's INFO lines on stdout (the per-iteration line users watch).

    Installs ``_ConsoleHandler`` once, unless the logger already has handlers of its own (then
    the caller's configuration stands). Records still propagate, so a notebook's or a test's
    root handler (pytest's ``caplog``) sees them too; the jobs configure no root handler, so
    nothing is printed twice there."""
    logger = logging.getLogger("softmax_spark")
    if logger.handlers:
        return
    logger.addHandler(_ConsoleHandler())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
