"""``--cv-folds``'s job helpers (``cli.cv_job``): the path table (the job itself: test_cv.py, Spark)."""

from softmax_spark.cli.cv_job import format_path_table


def test_path_table_stars_the_chosen_row():
    rows = [dict(l2=0.1, mean=0.5, std=0.01, nonZeros=4.0, iterations=9, passes=10, chosen=False),
            dict(l2=0.01, mean=0.4, std=0.02, nonZeros=6.0, iterations=11, passes=12, chosen=True)]
    lines = format_path_table(rows).splitlines()
    assert len(lines) == 3 and lines[2].startswith("*") and not lines[1].startswith("*")
