"""Notebook API over the same code as ``jobs/train.py``.

    from softmax_spark import SoftmaxRegression
    model = SoftmaxRegression(l2=1e-3, optimizer="lbfgs").fit(df)     # a SoftmaxModel
    model.predict_proba(X)

Options are ``TrainConfig``'s fields (the job's flags with underscores).
"""

from __future__ import annotations

import dataclasses

from .config import TrainConfig
from .model import SoftmaxModel

__all__ = ["SoftmaxRegression"]


class SoftmaxRegression:
    """Estimator: ``fit(df, validation_df=None) -> SoftmaxModel``; writes nothing unless
    ``model_dir`` is given."""

    def __init__(self, **options):
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"unknown options {unknown}; known: {sorted(names)}")
        self.options = dict(options)

    def config(self, **overrides) -> TrainConfig:
        cfg = TrainConfig(**{**self.options, **overrides})
        if cfg.input is None:
            cfg.input = "<DataFrame>"
        if cfg.model_dir is None:
            cfg.model_dir = "<not written>"
        return cfg.validate()

    def fit(self, df, validation_df=None) -> SoftmaxModel:
        from .training import fit_dataframe

        write = self.options.get("model_dir") is not None
        cfg = self.config()
        return fit_dataframe(df.sparkSession, cfg, df=df, validation_df=validation_df, write=write)
