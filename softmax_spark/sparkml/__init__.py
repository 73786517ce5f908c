"""The Spark ML layer: the Estimator and Model (``softmax_spark.sparkml.classification``), tuning, summaries, MLflow."""
