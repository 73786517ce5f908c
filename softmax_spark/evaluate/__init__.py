"""The evaluation job's library: metrics over a scored data set, predictions written back, plots."""
