"""What an Estimator fit prints: one summary line at the end, the rest at DEBUG.

The training code logs its progress (``ingested …``, ``optimizer …``, ``iter k objective …``,
``stopped: …``) at INFO on the ``softmax_spark`` logger, which the spark-submit jobs show on
stdout (``loop.use_console``). In a notebook that is one line per iteration per fit, and with
``CrossValidator(parallelism=2)`` two fits' lines interleave. Inside ``quiet_fit`` those INFO
records are demoted to DEBUG (a ``logging.Filter`` on the ``softmax_spark`` logger may change the
record it passes: Python's logging HOWTO, "Using Filters to impart contextual information"), so
they show only when that logger's level is DEBUG::

    import logging; logging.getLogger("softmax_spark").setLevel(logging.DEBUG)

or when the Estimator's ``verbose`` Param is True (INFO, as the jobs print them). Warnings are
never demoted. ``summary`` logs the one line that stays at INFO.

The demotion is per thread (each CrossValidator fit runs in its own pool thread); records from a
thread that no fit entered (a background thread of ours) follow the fits running: demoted while
any quiet fit runs and no verbose one.
"""

from __future__ import annotations

import contextlib
import logging
import threading

__all__ = ["quiet_fit", "summary"]

log = logging.getLogger("softmax_spark")

_state = threading.local()  # .verbose: a stack of the fits this thread is inside
_counts = {"quiet": 0, "verbose": 0}
_lock = threading.Lock()
_SUMMARY = "softmax_spark_summary"  # a record attribute: the summary line is never demoted


class _DemoteProgress(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or getattr(record, _SUMMARY, False):
            return True
        stack = getattr(_state, "verbose", None)
        if stack:
            quiet = not stack[-1]
        else:
            quiet = _counts["quiet"] > 0 and _counts["verbose"] == 0
        if not quiet:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return log.isEnabledFor(logging.DEBUG)


_FILTER = _DemoteProgress()


@contextlib.contextmanager
def quiet_fit(verbose: bool = False):
    """While inside (in this thread), the ``softmax_spark`` logger's INFO records are DEBUG
    records unless ``verbose``; nested and concurrent blocks are fine."""
    kind = "verbose" if verbose else "quiet"
    with _lock:
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)
        _counts[kind] += 1
    stack = getattr(_state, "verbose", None)
    if stack is None:
        stack = _state.verbose = []
    stack.append(bool(verbose))
    try:
        yield
    finally:
        stack.pop()
        with _lock:
            _counts[kind] -= 1


def summary(message: str, *args) -> None:
    """The fit's one INFO line (shown by default), never demoted."""
    log.info(message, *args, extra={_SUMMARY: True})
