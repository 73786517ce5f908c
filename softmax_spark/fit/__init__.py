"""Training: the job's options, the one training loop, the training orchestration and the plain-Python trainer."""
