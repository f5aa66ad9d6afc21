"""A vectorised first-order linear recurrence, the engine behind every exponential average.

``decay_recurrence(z, d, scale)`` returns ``y`` with ``y[0] = z[0]`` and
``y[t] = scale * z[t] + d * y[t-1]`` for ``0 <= d < 1``, without a Python loop over elements.

How: the series is cut into rows of ``BLOCK`` elements. Started from zero, element ``j`` of a
row is ``sum_i scale * d**(j-i) * z[i]`` over the row's elements ``i <= j``: the row times a
fixed upper-triangular ``BLOCK x BLOCK`` matrix of decays, so all rows at once are one matrix
product (BLAS; a cumulative sum along the rows, the obvious alternative, is three times
slower because it is a serial loop). The true value at each row's end obeys the same
recurrence one level up, with decay ``d**BLOCK`` and ``ceil(n/BLOCK)`` elements, so the
function recurses on those ends; each row then needs ``d**(j+1)`` times the previous row's
true end, which rides along in the same product as one extra column of the input and one
extra row of the matrix. Per series that is one copy into the padded input, one
matrix-vector product for the row ends and one matrix product: a few passes over memory
(the matrix product runs in pieces of ``PIECE_ROWS`` rows, see there).

Accuracy: each element is a sum of at most ``BLOCK + 1`` products whose weights are at most
``max(1, scale)`` in magnitude, so it carries a floating-point error of about ``eps * BLOCK``
relative to the exponentially weighted magnitude of ``z`` (in practice ~1e-16),
independent of the series length: errors do not accumulate across rows because the row ends
are themselves computed the same way. The tests pin it against the plain recursion to 1e-12
relative on long series with small and large spans.
"""

from __future__ import annotations

import functools

import numpy as np

BLOCK = 16
PIECE_ROWS = 960
"""Rows per matrix product: small enough (960 x 17 x 16 multiply-adds) that OpenBLAS runs
it on the calling thread. A sweep's worker processes already keep every core busy; BLAS
threads competing with them made the products several times slower, not faster. Rows of
16 (not 32 or 8) measured fastest: the product's work grows with the row length, the
number of rows and of recursion levels with its inverse."""
_NEGLIGIBLE_DECAY = 1e-20  # below this, d * y[t-1] is far under one ulp of the scale of y


@functools.lru_cache(maxsize=64)
def _decay_matrix(d: float, scale: float) -> np.ndarray:
    """``(BLOCK + 1) x BLOCK``: ``scale * d**(j-i)`` for ``i <= j`` above, ``d**(j+1)`` (the
    previous row's end carried into element ``j``) in the last row. Read-only: shared by
    every series with the same decay (a sweep's combinations repeat a few spans)."""
    j = np.arange(BLOCK)
    lag = j[None, :] - j[:, None]
    weights = np.zeros((BLOCK + 1, BLOCK))
    upper = lag >= 0
    weights[:BLOCK][upper] = scale * d ** lag[upper].astype(np.float64)
    weights[BLOCK] = d ** (j + 1.0)
    weights.setflags(write=False)
    return weights


def decay_recurrence(z: np.ndarray, d: float, scale: float = 1.0) -> np.ndarray:
    """``y[0] = z[0]``, ``y[t] = scale * z[t] + d * y[t-1]`` (a new float64 array; ``z`` is not
    written)."""
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[0]
    if n == 0:
        return z.copy()
    if d < _NEGLIGIBLE_DECAY:
        y = z * scale
        y[0] = z[0]
        return y
    return _rows_recurrence(z, float(d), float(scale), float(z[0]))


def _rows_recurrence(z: np.ndarray, d: float, scale: float, first: float) -> np.ndarray:
    """``decay_recurrence`` with ``y[0] = first`` (``z[0]`` is not read)."""
    n = z.shape[0]
    rows = -(-n // BLOCK)
    padded = np.empty((rows, BLOCK + 1))
    body = padded[:, :BLOCK]
    full = n // BLOCK
    body[:full] = z[:full * BLOCK].reshape(full, BLOCK)
    if full < rows:
        body[full, :n - full * BLOCK] = z[full * BLOCK:]
        body[full, n - full * BLOCK:] = 0.0
    body[0, 0] = 0.0  # the seed enters below, exactly
    weights = _decay_matrix(d, scale)
    padded[0, BLOCK] = 0.0
    if rows > 1:
        # Each row's end, started from zero (einsum: numpy's own loop, never BLAS threads).
        ends = np.einsum("ij,j->i", body, weights[:BLOCK, BLOCK - 1])
        ends[0] += first * d ** (BLOCK - 1)
        padded[1:, BLOCK] = _rows_recurrence(ends, d ** BLOCK, 1.0, float(ends[0]))[:-1]
    y = np.empty((rows, BLOCK))
    for lo in range(0, rows, PIECE_ROWS):
        np.matmul(padded[lo:lo + PIECE_ROWS], weights, out=y[lo:lo + PIECE_ROWS])
    y[0] += first * d ** np.arange(BLOCK, dtype=np.float64)
    return y.reshape(-1)[:n]
