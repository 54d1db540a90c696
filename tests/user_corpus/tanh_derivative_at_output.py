"""MISTAKE (a tanh network): tanh' applied to the activation's output A instead of to Z."""

import numpy as np


def _forward(X, W, B):
    A = [X]
    for i in range(len(W) - 1):
        A.append(np.tanh(A[-1] @ W[i] + B[i]))
    return A, A[-1] @ W[-1] + B[-1]


def _tanh_derivative(z):
    return 1 - np.tanh(z) ** 2


def _backward(W, A, Y, T):
    delta = 2 * (Y - T) / Y.size
    DW, DB = [None] * len(W), [None] * len(W)
    for i in reversed(range(len(W))):
        DW[i] = A[i].T @ delta
        DB[i] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ W[i].T) * _tanh_derivative(A[i])  # A[i] is tanh(Z), not Z
    return DW, DB


def exercise(W, B, A, Y, T):
    return _backward(W, A, Y, T)


def general(X, T, W, B):
    A, Y = _forward(X, W, B)
    DW, DB = _backward(W, A, Y, T)
    return ((Y - T) ** 2).mean(), DW, DB


def correct_exercise(W, B, A, Y, T):
    """The right derivative, from the output: tanh'(z) = 1 - A²."""
    delta = 2 * (Y - T) / Y.size
    DW, DB = [None] * len(W), [None] * len(W)
    for i in reversed(range(len(W))):
        DW[i] = A[i].T @ delta
        DB[i] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ W[i].T) * (1 - A[i] ** 2)
    return DW, DB
