"""Schaipp's synthetic ridge regression (2024): n=200 samples in d=1,000 dimensions, squared loss.

Over-parametrized (d > n) with label noise, so the weight decay acts as the ridge penalty and decides the test
loss. The recipe follows the synthetic linear-regression data of Schaipp's ``step-back`` benchmark: a unit-norm
dense oracle ``w*``; features with an offset, a random scale per column and random sparsity, so that the columns'
scales differ (the case where Adam's per-coordinate steps matter):

    A_ij = m_ij · s_j · (z_ij + 1),   z_ij ~ N(0, 1),   s_j ~ N(0, 1),   m_ij ~ Bernoulli(min(1, 30·ln(n)/n))
    columns rescaled to Euclidean norm 10 over the n training rows (validation and test rows share the scale),
    y_i = A_i·w* + σ·ε_i,   ε_i ~ N(0, 1),   ‖w*‖ = 1.

Generated from a seed; the same seed gives the same arrays on every machine (numpy's PCG64).
"""

from __future__ import annotations

import functools

import numpy as np

from weightdecay.data._types import RegressionDataset
from weightdecay.errors import UserError

__all__ = ["make_ridge"]


@functools.lru_cache(maxsize=8)
def make_ridge(seed: int = 0, n: int = 200, d: int = 1000, *, n_val: int = 200, n_test: int = 1000,
               noise: float = 0.1) -> RegressionDataset:
    """Generate the ridge regression problem: float32 ``x`` of shape ``(N, d)`` and ``y`` of shape ``(N,)``.

    Args:
        seed: the data seed (the problem, not the run: a sweep keeps it fixed and varies the run seed).
        n: training samples (Schaipp: 200).
        d: dimension (Schaipp: 1,000).
        n_val: validation samples, drawn like the training ones.
        n_test: test samples, drawn like the training ones.
        noise: the label noise σ.

    >>> ds = make_ridge(seed=0)
    >>> ds.train_x.shape, ds.train_y.shape, ds.test_x.shape
    ((200, 1000), (200,), (1000, 1000))
    """
    if min(n, d, n_val, n_test) < 1:
        raise UserError(f"make_ridge needs n, d, n_val and n_test >= 1, got n={n}, d={d}, n_val={n_val}, "
                        f"n_test={n_test}")
    if noise < 0:
        raise UserError(f"make_ridge needs noise >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    w_star = rng.standard_normal(d)
    w_star /= np.linalg.norm(w_star)
    rows = n + n_val + n_test
    keep = min(1.0, 30 * np.log(n) / n)
    a = (rng.standard_normal((rows, d)) + 1.0) * rng.standard_normal(d) * (rng.random((rows, d)) < keep)
    a *= 10.0 / np.maximum(np.linalg.norm(a[:n], axis=0), 1e-6)
    y = a @ w_star + noise * rng.standard_normal(rows)
    splits = {}
    for split, part in (("train", slice(0, n)), ("val", slice(n, n + n_val)), ("test", slice(n + n_val, rows))):
        splits[f"{split}_x"], splits[f"{split}_y"] = a[part].astype(np.float32), y[part].astype(np.float32)
    arrays = dict(splits, w_star=w_star.astype(np.float32))
    for array in arrays.values():
        array.setflags(write=False)
    return RegressionDataset(name="ridge", noise=float(noise), **arrays)
