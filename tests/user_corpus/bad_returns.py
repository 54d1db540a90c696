"""Functions that return something unusable: each must fail its backend with a precise message."""

import numpy as np


def wrong_count(W, B, A, Y, T):
    return [np.zeros_like(w) for w in W[:-1]], [np.zeros_like(b) for b in B]


def not_numeric(X, T, W, B):
    return ["oops" for _ in W], [np.zeros_like(b) for b in B]


def non_finite(W, B, A, Y, T):
    DW = [np.zeros_like(w) for w in W]
    DW[2][1, 3] = np.nan
    return DW, [np.zeros_like(b) for b in B]


def single_array(X, T, W, B):
    return np.zeros(3)


def too_many_values(X, T, W, B):
    return 0.0, W, B, None


def raises(X, T, W, B):
    return helper(X)


def helper(X):
    return X / undefined_name  # noqa: F821


def odd_signature(a, b, c):
    return a
