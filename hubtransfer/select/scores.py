"""Transferability scores: how well a frozen checkpoint's features suit the labels, before any fine-tuning.

All scores read (N, D) features and N integer labels; higher is better.

* ``logme``: LogME (You et al., ICML 2021), the log marginal evidence per example of a Bayesian
  linear model from the features to each one-hot label column, with the prior and noise
  precisions set by evidence maximisation; averaged over classes.
* ``hscore``: H-score (Bao et al., ICIP 2019), tr(cov(f)^-1 cov(E[f|y])): how much of the feature
  variance lies between classes. The covariance is shrunk (Ledoit-Wolf) so that D close to N stays stable.
* ``knn``: leave-one-out k-nearest-neighbour accuracy on cosine similarity (k=10): no fitting, and
  easy to read as "what a simple classifier on these features gets".

These are written here rather than taken from a package: the published implementations ship as
research scripts (none on PyPI that works with these pins), and each score is a few lines of linear algebra.
"""

from __future__ import annotations

import numpy as np

from hubtransfer.registry import Registry

SCORES: Registry = Registry("transferability score")


def _checked(features, labels) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if f.ndim != 2 or len(f) != len(y):
        raise ValueError(f"features must be (N, D) with N labels; got features {f.shape} and {len(y)} labels")
    if len(np.unique(y)) < 2:
        raise ValueError("a transferability score needs at least two classes in the labels")
    if not np.isfinite(f).all():
        raise ValueError("features hold NaN or infinite values")
    return f, y


def logme(features, labels, *, max_iter: int = 100, tol: float = 1e-5) -> float:
    """LogME evidence per example, averaged over the one-hot label columns."""
    f, y = _checked(features, labels)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)  # f = u diag(s) v^T, r = min(n, d) singular values
    sigma = s**2
    evidences = []
    for c in np.unique(y):
        t = (y == c).astype(np.float64)
        z = u.T @ t  # the label column in the feature basis
        outside = max(float(t @ t - z @ z), 0.0)  # the part of the labels no linear map of the features reaches
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            shrink = beta * sigma / (alpha + beta * sigma)
            gamma = shrink.sum()
            m2 = float(np.sum((beta * s * z / (alpha + beta * sigma)) ** 2))  # |m|^2
            res2 = float(np.sum((alpha * z / (alpha + beta * sigma)) ** 2)) + outside  # |f m - t|^2
            new_alpha = gamma / max(m2, 1e-12)
            new_beta = (n - gamma) / max(res2, 1e-12)
            done = abs(new_alpha - alpha) / alpha < tol and abs(new_beta - beta) / beta < tol
            alpha, beta = new_alpha, new_beta
            if done:
                break
        m2 = float(np.sum((beta * s * z / (alpha + beta * sigma)) ** 2))
        res2 = float(np.sum((alpha * z / (alpha + beta * sigma)) ** 2)) + outside
        # log |alpha I + beta F^T F| over all D eigenvalues: d - r of them are alpha alone
        logdet = float(np.sum(np.log(alpha + beta * sigma))) + (d - len(sigma)) * np.log(alpha)
        evidence = (
            n / 2 * np.log(beta)
            + d / 2 * np.log(alpha)
            - n / 2 * np.log(2 * np.pi)
            - beta / 2 * res2
            - alpha / 2 * m2
            - logdet / 2
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def hscore(features, labels) -> float:
    """H-score with a shrunk feature covariance."""
    from sklearn.covariance import LedoitWolf

    f, y = _checked(features, labels)
    f = f - f.mean(axis=0)
    cov = LedoitWolf().fit(f).covariance_
    means = np.zeros_like(f)
    for c in np.unique(y):
        means[y == c] = f[y == c].mean(axis=0)
    between = means.T @ means / len(f)
    return float(np.trace(np.linalg.solve(cov, between)))


def knn(features, labels, *, k: int = 10) -> float:
    """Leave-one-out k-NN accuracy (cosine similarity, majority vote, ties to the nearer neighbour)."""
    f, y = _checked(features, labels)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    k = min(k, len(f) - 1)
    classes = np.unique(y)
    correct = 0
    for start in range(0, len(f), 1024):  # blocks keep the similarity matrix small
        sim = f[start : start + 1024] @ f.T
        rows = np.arange(sim.shape[0])
        sim[rows, start + rows] = -np.inf  # leave the example itself out
        nearest = np.argpartition(-sim, k, axis=1)[:, :k]
        order = np.take_along_axis(sim, nearest, axis=1).argsort(axis=1)[:, ::-1]
        nearest = np.take_along_axis(nearest, order, axis=1)
        votes = (y[nearest][:, :, None] == classes[None, None, :]).sum(axis=1) + 1e-3 * (
            y[nearest[:, :1]] == classes[None, :]
        )
        correct += int((classes[votes.argmax(axis=1)] == y[start : start + 1024]).sum())
    return correct / len(f)


SCORES.register("logme", logme)
SCORES.register("hscore", hscore)
SCORES.register("knn", knn)
