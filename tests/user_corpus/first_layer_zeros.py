"""MISTAKE: the loop stops one layer early, so the first layer keeps its zero gradients."""

import numpy as np


def _forward(X, W, B):
    A = [X]
    for i in range(len(W) - 1):
        A.append(np.maximum(0, A[-1] @ W[i] + B[i]))
    return A, A[-1] @ W[-1] + B[-1]


def _backward(W, B, A, Y, T):
    delta = 2 * (Y - T) / Y.size  # dE/dY of ((Y - T) ** 2).mean()
    DW = [np.zeros_like(w) for w in W]
    DB = [np.zeros_like(b) for b in B]
    for i in reversed(range(1, len(W))):
        DW[i] = A[i].T @ delta
        DB[i] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ W[i].T) * (A[i] > 0)
    return DW, DB


def exercise(W, B, A, Y, T):
    return _backward(W, B, A, Y, T)


def general(X, T, W, B):
    A, Y = _forward(X, W, B)
    DW, DB = _backward(W, B, A, Y, T)
    return ((Y - T) ** 2).mean(), DW, DB
