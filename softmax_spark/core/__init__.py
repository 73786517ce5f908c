"""The numpy core: the model, the loss and its kernels, curvature, penalties, metrics, inference. Imports no Spark."""
