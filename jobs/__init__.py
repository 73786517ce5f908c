"""The spark-submit jobs, installed as ``softmax_spark.jobs`` (pyproject's package-dir) so the wheel's
console scripts ``softmax-spark-train`` / ``softmax-spark-evaluate`` run their ``main()``;
``spark-submit jobs/train.py`` runs the same files by path."""
