"""What a model records about the data it was trained on, under names of its own.

A model's metadata carries ``"columns"``: the columns scoring and evaluation read by default, named
independently of the training job's flags (renaming ``--features-col`` must not change what a saved
model means)::

    "columns": {"features": "features" | None,     # the vector / array column, or None with
                "feature_cols": ["x0", …] | None,   # the numeric feature columns, in order
                "label": "label",                   # the label column
                "weight": "w" | None}               # the sample-weight column, if any

``columns_record`` builds it at training time; ``model_columns`` reads it back — and, for a model
written before the section existed (its metadata holds only the job's ``options``: ``features_col``,
``feature_cols``, ``label_col``, ``weight_col``; ``tests/data/legacy-5c32a57``), from those.
``model_feature_spec`` is the ``FeatureSpec`` scoring uses by default. No Spark import.
"""

from __future__ import annotations

from softmax_spark.core.features import FeatureSpec

__all__ = ["COLUMNS", "columns_record", "model_columns", "model_feature_spec"]

COLUMNS = "columns"
# the section's names → the training options' names, for models written before the section existed
_LEGACY_OPTIONS = {"features": "features_col", "feature_cols": "feature_cols", "label": "label_col",
                   "weight": "weight_col"}


def columns_record(spec: FeatureSpec, label_col: str | None, weight_col: str | None) -> dict:
    """The ``"columns"`` section for a model trained on ``spec``'s feature columns, ``label_col``
    and ``weight_col`` (None: no weights)."""
    return {"features": None if spec.feature_cols else spec.features_col,
            "feature_cols": list(spec.feature_cols) if spec.feature_cols else None,
            "label": label_col, "weight": weight_col or None}


def model_columns(metadata: dict | None) -> dict:
    """The ``"columns"`` section of a model's ``metadata`` (keys features, feature_cols, label,
    weight; None where unknown). A model without the section: from its training ``options``; a
    mapping with neither key is read as such an options mapping."""
    metadata = metadata or {}
    section = metadata.get(COLUMNS)
    if isinstance(section, dict):
        return {key: section.get(key) for key in _LEGACY_OPTIONS}
    options = metadata.get("options") if isinstance(metadata.get("options"), dict) else metadata
    return {key: options.get(old) for key, old in _LEGACY_OPTIONS.items()}


def model_feature_spec(metadata: dict | None) -> FeatureSpec | None:
    """The feature columns a model was trained on (``feature_cols``, else ``features``), or None if
    its metadata names none."""
    columns = model_columns(metadata)
    if columns["feature_cols"]:
        return FeatureSpec(features_col=None, feature_cols=tuple(str(c) for c in columns["feature_cols"]))
    if columns["features"]:
        return FeatureSpec(features_col=str(columns["features"]))
    return None
