"""A student's hand-written NumPy backprop of Conv2d(1,4,3,padding=1)-ReLU-MaxPool2d(2)-
Flatten-Linear(64,10) with cross-entropy, in the params form f(X, T, params) -> dict: right,
and with each of the issue's mistakes (a flipped kernel, max-pool routing its gradient to
every position of its window, the batch mean missing)."""

import numpy as np


def _backprop(X, T, params, flip_kernel=False, route_all=False, no_mean=False):
    W, b = params["0.weight"], params["0.bias"]
    V, c = params["4.weight"], params["4.bias"]
    N, (O, _, K, _) = X.shape[0], W.shape
    H = X.shape[2]
    xp = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    Z = np.zeros((N, O, H, H))
    for i in range(K):
        for j in range(K):
            Z += np.einsum("nhw,o->nohw", xp[:, 0, i : i + H, j : j + H], W[:, 0, i, j])
    Z += b[None, :, None, None]
    A = np.maximum(Z, 0)
    h = H // 2
    windows = A.reshape(N, O, h, 2, h, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, O, h, h, 4)
    F = windows.max(axis=-1).reshape(N, -1)
    Y = F @ V.T + c
    S = np.exp(Y - Y.max(axis=1, keepdims=True))
    S /= S.sum(axis=1, keepdims=True)
    dY = S.copy()
    dY[np.arange(N), T] -= 1
    if not no_mean:
        dY /= N
    dV, dc = dY.T @ F, dY.sum(axis=0)
    dP = (dY @ V).reshape(N, O, h, h)
    if route_all:
        dwin = np.repeat(dP[..., None], 4, axis=-1)
    else:
        dwin = np.zeros_like(windows)
        np.put_along_axis(dwin, windows.argmax(axis=-1)[..., None], dP[..., None], axis=-1)
    dA = dwin.reshape(N, O, h, h, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, O, H, H)
    dZ = dA * (Z > 0)
    dW = np.zeros_like(W)
    for i in range(K):
        for j in range(K):
            dW[:, 0, i, j] = np.einsum("nohw,nhw->o", dZ, xp[:, 0, i : i + H, j : j + H])
    if flip_kernel:
        dW = dW[:, :, ::-1, ::-1].copy()  # convolution instead of correlation
    return {"0.weight": dW, "0.bias": dZ.sum(axis=(0, 2, 3)), "4.weight": dV, "4.bias": dc}


def correct(X, T, params):
    return _backprop(X, T, params)


def flipped_kernel(X, T, params):
    return _backprop(X, T, params, flip_kernel=True)


def pool_to_every_position(X, T, params):
    return _backprop(X, T, params, route_all=True)


def no_batch_mean(X, T, params):
    return _backprop(X, T, params, no_mean=True)


def with_loss(X, T, params):
    grads = _backprop(X, T, params)
    return 2.5, grads  # a wrong loss beside right gradients
