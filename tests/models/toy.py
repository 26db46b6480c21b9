"""Tiny generated problems for the model tests."""

from __future__ import annotations

import numpy as np


def blobs(n: int = 90, k: int = 3, d: int = 5, seed: int = 0):
    """``k`` well separated Gaussian blobs."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (k, d))
    y = np.arange(n) % k
    X = centres[y] + rng.normal(0, 0.5, (n, d))
    return X.astype(np.float32), y.astype(np.int64)


def two_modalities(n: int, seed: int):
    """Two 8-dimensional modality blocks: A is clean and strong, B is noisy but still
    informative alone; centred like a concat fusion's blocks. Returns X, y, blocks."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    ca = np.random.default_rng(100).normal(0, 1, (3, 8))
    cb = np.random.default_rng(101).normal(0, 1, (3, 8))
    A = ca[y] * 4 + rng.normal(0, 0.3, (n, 8))
    B = cb[y] + rng.normal(0, 1.0, (n, 8))
    X = np.hstack([A, B])
    return (X - X.mean(0)).astype(np.float32), y.astype(np.int64), [(0, 8), (8, 16)]


def three_blocks(n: int = 90, seed: int = 0):
    """Three modality blocks of different widths, each weakly informative."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    parts = []
    for width, scale in ((6, 2.0), (3, 1.5), (1, 1.0)):
        c = rng.normal(0, scale, (3, width))
        parts.append(c[y] + rng.normal(0, 0.5, (n, width)))
    X = np.hstack(parts).astype(np.float32)
    return X, y.astype(np.int64), [(0, 6), (6, 9), (9, 10)]


#: the layouts of :func:`structured`'s blocks, as fusion.json gives them
STRUCTURED_LAYOUTS = [
    {"column": "image", "layout": "image", "shape": [8, 8, 3]},
    {"column": "audio", "layout": "logmel", "shape": [6, 5]},
    {"column": "text", "layout": "tokens", "shape": [7], "vocab": 13},
    {"column": "value"},
]


def structured(n: int = 60, seed: int = 0):
    """An image (8x8x3, class in which half is bright), log-mel frames (6x5, class in the
    first band), token ids (7, class in the first token, then random words and padding) and
    one plain value block. Returns X, y, blocks."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    img = rng.random((n, 8, 8, 3)) * 0.2
    img[y == 1, :, :4] += 0.8
    img[y == 2, :4] += 0.8
    mel = rng.normal(0, 1, (n, 6, 5))
    mel[:, :, 0] += y[:, None] * 2
    tok = np.zeros((n, 7))
    for k in range(n):
        length = rng.integers(1, 7)
        tok[k, :length] = rng.integers(2, 10, length)
        tok[k, 0] = 10 + y[k]
    value = rng.normal(0, 1, (n, 1))
    X = np.hstack([img.reshape(n, -1), mel.reshape(n, -1), tok, value]).astype(np.float32)
    return X, y.astype(np.int64), [(0, 192), (192, 222), (222, 229), (229, 230)]


def split(X, y, n_val: int, n_test: int):
    """(train, val, test) pairs of disjoint rows: the last ``n_test`` rows for scoring, the
    ``n_val`` before them for early stopping, the rest to fit on (toy rows cycle through the
    classes, so every part has every class)."""
    a, b = len(y) - n_val - n_test, len(y) - n_test
    return (X[:a], y[:a]), (X[a:b], y[a:b]), (X[b:], y[b:])
