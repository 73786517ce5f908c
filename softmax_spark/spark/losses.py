"""``make_loss``: the loss over ingested blocks, on the backend of their session.

The one entry point for a loss over data (``fit.training``, the Estimator, inference): a
``driver_data.DriverData`` (a small set held in the driver) gets ``DriverLoss``; anything else
the loss its session's ``backend.Backend`` registered (``distributed.DistributedLoss`` on a
classic session, ``connect_backend.ConnectLoss`` on Spark Connect). Importing this module
registers both engines.
"""

from __future__ import annotations

from softmax_spark.spark import connect_backend  # noqa: F401 - registers the "connect" engine
from softmax_spark.spark.backend import backend_for
from softmax_spark.spark.distributed import DistributedLoss, is_ingested
from softmax_spark.spark.driver_data import DriverData, DriverLoss

__all__ = ["make_loss"]


def make_loss(blocks, *args, **kwargs) -> DistributedLoss:
    """The loss over ``blocks`` (a ``backend.BlockData``, its ``blocks``, or a ``DriverData``);
    same parameters as ``distributed.DistributedLoss``."""
    if isinstance(blocks, DriverData):
        return DriverLoss(blocks, *args, **kwargs)
    return backend_for(blocks.blocks if is_ingested(blocks) else blocks).make_loss(blocks, *args, **kwargs)
