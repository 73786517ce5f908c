"""A synthetic bag-of-words classification set (test and bench helper; no download needed).

Word counts are drawn as in a topic model: every class c has a distribution over the vocabulary,
a Zipf background (rank r has weight r^−1.1, the shape of English word frequencies) mixed with a
class topic that boosts ``topic_words`` words drawn for that class (some shared between classes,
so the classes overlap); a document of class c has Poisson(``mean_length``) words drawn from its
class's mixture with a per-document mixing weight ~ Beta(2, 5) on the topic. The result is CSR counts
with the heavy-tailed column scales of real text (frequent words in most rows, most words in a few),
the reason quasi-Newton methods stop far from the optimum on it.

``make_bow(n_rows, n_words, n_classes, seed)`` → (X csr float64 (n_rows, n_words), y int (n_rows,)).
``SparseNumpyProblem`` is ``problem.NumpyProblem`` over a CSR matrix (its moments from sparse sums).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from softmax_spark.core.problem import NumpyProblem


def make_bow(n_rows: int = 9751, n_words: int = 8700, n_classes: int = 6, seed: int = 0,
             mean_length: float = 40.0, topic_words: int = 400):
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, n_words + 1) ** 1.1
    zipf /= zipf.sum()
    perm = rng.permutation(n_words)
    background = zipf[perm]  # word j's background frequency
    topics = np.empty((n_classes, n_words))
    for c in range(n_classes):
        words = rng.choice(n_words, size=topic_words, replace=False, p=background)
        t = np.zeros(n_words)
        t[words] = rng.gamma(0.5, 1.0, size=topic_words)
        topics[c] = t / t.sum()
    y = rng.integers(0, n_classes, size=n_rows)
    lengths = np.maximum(rng.poisson(mean_length, size=n_rows), 1)
    mix = rng.beta(2.0, 5.0, size=n_rows)
    indptr, indices, data = [0], [], []
    for i in range(n_rows):
        p = (1 - mix[i]) * background + mix[i] * topics[y[i]]
        words = rng.choice(n_words, size=lengths[i], p=p)
        u, k = np.unique(words, return_counts=True)
        indices.append(u)
        data.append(k.astype(np.float64))
        indptr.append(indptr[-1] + u.size)
    X = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.array(indptr)), shape=(n_rows, n_words))
    return X, y


class SparseNumpyProblem(NumpyProblem):
    """``NumpyProblem`` over a CSR X (population column moments from sparse sums; no covariance)."""

    def __init__(self, X, y_index, precond, penalty):
        super(NumpyProblem, self).__init__(precond, penalty, 0)  # _ProblemBase's: skip the dense moments
        self.X = sp.csr_matrix(X)
        self.y_index = np.asarray(y_index)
        self.sample_weight = None
        self.n_classes = precond.n_classes
        self.block_rows = 32768
        self.moments = (None,) + sparse_moments(self.X)


def sparse_moments(X):
    """(mean, population variance) of the columns of a sparse X."""
    n = X.shape[0]
    mean = np.asarray(X.sum(axis=0)).ravel() / n
    sq = np.asarray(X.multiply(X).sum(axis=0)).ravel() / n
    return mean, np.maximum(sq - mean**2, 0.0)
