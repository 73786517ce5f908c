"""``SoftmaxRegressionModel``: a fitted softmax model as a Spark ML Model (MLlib's
``LogisticRegressionModel`` attributes, ``transform``, ``evaluate``, persistence by ``persistence``);
see ``softmax_spark.sparkml.classification``'s docstring.
"""

from __future__ import annotations

import numpy as np
from pyspark.ml.base import Model
from pyspark.ml.util import MLReadable, MLReader, MLWritable, MLWriter

from softmax_spark.core.errors import InputError
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.sparkml.params import _SoftmaxRegressionParams
from softmax_spark.sparkml.persistence import _ModelReader, _ModelWriter
from softmax_spark.sparkml.summary import SoftmaxRegressionTrainingSummary
from softmax_spark.sparkml.summary import make_summary
from softmax_spark.spark.scoring import check_thresholds, score_arrays
from softmax_spark.sparkml.diagnostics import prediction_metadata
from softmax_spark.spark.scoring import score_dataframe
from softmax_spark.spark.shipping import ensure_workers, workers_python

__all__ = ["SoftmaxRegressionModel"]


class SoftmaxRegressionModel(Model, _SoftmaxRegressionParams, MLWritable, MLReadable):
    """A fitted softmax model as a Spark ML Model (see the module docstring).

    ``transform(df)`` appends rawPrediction, probability (ml Vectors) and prediction (double =
    class index), and ``predictedLabelCol`` when set, through ``scoring.score_dataframe``.
    """

    def __init__(self, model: SoftmaxModel | None = None, binomial: bool = False):
        super().__init__()
        self._model = model
        self._binomial = bool(binomial)
        self._summary = None

    # -- MLlib's attributes --------------------------------------------------------------------
    @property
    def softmaxModel(self) -> SoftmaxModel:
        """The fitted ``softmax_spark.SoftmaxModel`` (coef (C, D), intercept (C,), classes, history)."""
        if self._model is None:
            raise RuntimeError("this SoftmaxRegressionModel holds no fitted model")
        return self._model

    @property
    def classes(self) -> list:
        """Label values; class index c (``prediction``) is ``classes[c]``."""
        return list(self.softmaxModel.classes)

    @property
    def numClasses(self) -> int:
        return self.softmaxModel.n_classes

    @property
    def numFeatures(self) -> int:
        return self.softmaxModel.n_features

    @property
    def isBinomial(self) -> bool:
        return self._binomial

    def _mllib_coef(self):
        m = self.softmaxModel
        if self._binomial:
            v, c = m.log_odds(1, 0)
            return v.reshape(1, -1), np.array([c])
        return m.coef, m.intercept

    @property
    def coefficientMatrix(self):
        """pyspark.ml.linalg.DenseMatrix: C × D (binomial: 1 × D, the row v = w_1 − w_0)."""
        from pyspark.ml.linalg import DenseMatrix

        coef, _ = self._mllib_coef()
        return DenseMatrix(coef.shape[0], coef.shape[1], coef.ravel(order="F").tolist())

    @property
    def interceptVector(self):
        """pyspark.ml.linalg.DenseVector of size C (binomial: 1)."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self._mllib_coef()[1])

    @property
    def coefficients(self):
        """Binomial models only (as MLlib): the coefficient vector v."""
        from pyspark.ml.linalg import DenseVector

        if not self._binomial:
            raise RuntimeError("multinomial models have a matrix of coefficients; use coefficientMatrix")
        return DenseVector(self._mllib_coef()[0][0])

    @property
    def intercept(self) -> float:
        """Binomial models only (as MLlib): the intercept c."""
        if not self._binomial:
            raise RuntimeError("multinomial models have a vector of intercepts; use interceptVector")
        return float(self._mllib_coef()[1][0])

    @property
    def hasSummary(self) -> bool:
        """True after ``fit`` and after a load (a loaded summary holds the saved fields only; see
        ``summary.py``)."""
        return self._summary is not None

    @property
    def summary(self) -> SoftmaxRegressionTrainingSummary:
        """MLlib's (Binary)LogisticRegressionTrainingSummary fields and ours (``summary.py``)."""
        if self._summary is None:
            raise RuntimeError("no training summary available for this SoftmaxRegressionModel")
        return self._summary

    def evaluate(self, dataset):
        """MLlib's ``evaluate``: the (Binary)LogisticRegressionSummary of this model on ``dataset``
        (lazy; see ``summary.py``)."""
        return make_summary(self, dataset, training=False, certificate=self.softmaxModel.metadata.get("certificate"))

    # -- prediction ----------------------------------------------------------------------------
    def _thresholds(self):
        if self._binomial:
            if self.isSet(self.thresholds) or self.isSet(self.threshold):
                return self.getThresholds()
            return None
        return self.getOrDefault(self.thresholds) if self.isSet(self.thresholds) else None

    def _score_one(self, value):
        x = np.asarray(value.toArray() if hasattr(value, "toArray") else value, dtype=np.float64).reshape(1, -1)
        if x.shape[1] != self.numFeatures:
            raise InputError(f"the vector has {x.shape[1]} features, the model expects {self.numFeatures}")
        m = self.softmaxModel
        t = check_thresholds(self._thresholds(), self.numClasses)
        return score_arrays(x, m.coef, m.intercept, t, self._binomial)

    def predictRaw(self, value):
        """rawPrediction (DenseVector) for one feature vector, as MLlib's ``predictRaw``."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self._score_one(value)[0][0])

    def predictProbability(self, value):
        """probability (DenseVector) for one feature vector."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self._score_one(value)[1][0])

    def predict(self, value) -> float:
        """prediction (class index, float) for one feature vector."""
        return float(self._score_one(value)[2][0])

    def _transform(self, dataset):
        ensure_workers(dataset.sparkSession)  # the scoring function is wrapped now, run later
        with workers_python(dataset.sparkSession):
            scored = score_dataframe(
                dataset, self.softmaxModel, featuresCol=self.getFeaturesCol(),
                rawPredictionCol=self.getRawPredictionCol(), probabilityCol=self.getProbabilityCol(),
                predictionCol=self.getPredictionCol(), predictedLabelCol=self._value(self.predictedLabelCol),
                thresholds=self._thresholds(), binomial=self._binomial,
            )
        if self.getPredictionCol():  # MLlib's nominal attribute (num_vals = number of classes)
            scored = scored.withMetadata(self.getPredictionCol(), prediction_metadata(self.numClasses))
        return scored

    # -- persistence ---------------------------------------------------------------------------
    def write(self) -> MLWriter:
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _ModelReader(cls)

