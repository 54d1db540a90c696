"""MISTAKE: the sign of dE/dY is flipped (T - Y)."""

import numpy as np


def _forward(X, W, B):
    A = [X]
    for i in range(len(W) - 1):
        A.append(np.maximum(0, A[-1] @ W[i] + B[i]))
    return A, A[-1] @ W[-1] + B[-1]


def _backward(W, A, Y, T):
    delta = 2 * (T - Y) / Y.size  # dE/dY of ((Y - T) ** 2).mean()
    DW, DB = [None] * len(W), [None] * len(W)
    for i in reversed(range(len(W))):
        DW[i] = A[i].T @ delta
        DB[i] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ W[i].T) * (A[i] > 0)
    return DW, DB


def exercise(W, B, A, Y, T):
    return _backward(W, A, Y, T)


def general(X, T, W, B):
    A, Y = _forward(X, W, B)
    DW, DB = _backward(W, A, Y, T)
    return ((Y - T) ** 2).mean(), DW, DB
