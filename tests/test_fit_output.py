"""A fit's log output (``spark.fit_output``): progress demoted to DEBUG inside ``quiet_fit``, the summary kept."""

import logging

from softmax_spark.spark import fit_output


def test_quiet_fit_demotes_progress_but_not_the_summary(caplog):
    log = logging.getLogger("softmax_spark")
    with caplog.at_level(logging.INFO, logger="softmax_spark"):
        with fit_output.quiet_fit():
            log.info("iteration 1")
            fit_output.summary("fit done in %d s", 3)
            with fit_output.quiet_fit(verbose=True):
                log.info("verbose inside")
        log.info("after")
    shown = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert shown == [("INFO", "fit done in 3 s"), ("INFO", "verbose inside"), ("INFO", "after")]
