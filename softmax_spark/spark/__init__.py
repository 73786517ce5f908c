"""Spark runtime: the session, the backends (classic jobs, resident tasks, Spark Connect), ingest, distributed passes, scoring."""
