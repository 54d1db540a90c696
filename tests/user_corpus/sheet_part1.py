"""The exercise sheet's Part 1 code. The three functions are verbatim; the script lines around
them (which need the course's utils.py) only run as __main__. Checked on the 4-6-6-6-1 network,
back_propagation raises: deltas[-1].dot(A[i]) multiplies a (20, 1) by a (20, 6) array."""

# ruff: noqa
# fmt: off
import numpy

# 4. Error backpropagation (TODO: replace by your code)
# * dE/dY
def err_derivative(Y, T):
    return 2*(Y - T)

# *  $A_i = \max(0, Z_i) \Rightarrow dA_i/dZ_i = 1$  if  $Z_i > 0$  else 0
def reLu_derivative(A):
    return (A > 0)*1
def back_propagation(W,B,A,Y,T):
    dY = err_derivative(Y,T)
    deltas = [dY] # dErr/dY
    DW = []
    DB = []
    for i in reversed(range(len(W))):
        if i == len(W)-1 :
            dW_i = deltas[-1].dot(A[i]) # dW_4
            dB_i = deltas[-1] # dB_4
            DW.insert(0,dW_i)
            DB.insert(0,dB_i)
            dA_i = W[i].dot(deltas[-1])
            deltas.insert(0, dA_i)
        else:
            derivative_activation = reLu_derivative(A[i+1])
            dW_i = A[i].T.dot(derivative_activation * deltas[0].T)
            DW.insert(0,dW_i)
            dB_i = derivative_activation * deltas[0].T
            DB.insert(0, dB_i)
            dA_i = W[i].dot((derivative_activation * deltas[0].T).T)
            deltas.insert(0, dA_i)

    return DW


if __name__ == "__main__":
    import utils

    # 1. Get the data and parameters

    X,T = utils.getdata()
    W,B = utils.getparams()
    A = [X]

    # 2. Run the forward pass
    for i in range(3): A.append(numpy.maximum(0,A[-1].dot(W[i])+B[i]))
    Y = A[-1].dot(W[3])+B[3]

    # 3. Compute the error
    err = ((Y-T)**2).mean()

    DW = back_propagation(W,B,A,Y,T)
    # 5. Show error gradient w.r.t. the 1st weight parameter
    print(numpy.linalg.norm(DW[0][0,0]))
