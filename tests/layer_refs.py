"""Float64 references of the original four activations and derivatives, shared
by the module and deployment tests (written from the formulas, independent of
the C++)."""

import math

import torch
from torch import Tensor, nn

import artderiv.nn as ann


def exact64(act, act_params, x):
    """f'(x) with PyTorch's conventions at the kinks."""
    if act == "relu":
        return (x > 0).to(x.dtype)
    if act == "leaky_relu":
        slope = act_params[0] if act_params else 0.01
        return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope))
    if act == "sigmoid":
        s = torch.sigmoid(x)
        return s * (1 - s)
    if act == "tanh":
        t = torch.tanh(x)
        return 1 - t * t
    raise AssertionError(act)


DEFAULT_DERIVATIVE = {"relu": ("sigmoid", [1.0]), "leaky_relu": ("sigmoid", [1.0]),
                      "sigmoid": ("exact_plus", [0.05]), "tanh": ("exact_plus", [0.05])}


def factor64(act, act_params, deriv, deriv_params, x, blend=0.0):
    """(1 - b) * d(x) + b * f'(x), float64."""
    x = x.double()
    exact = exact64(act, act_params, x)
    if deriv is None:
        deriv, deriv_params = DEFAULT_DERIVATIVE[act]
    if deriv == "exact":
        d = exact
    elif deriv == "sigmoid":
        d = torch.sigmoid(deriv_params[0] * x)
    elif deriv == "exact_plus":
        d = exact + deriv_params[0]
    elif deriv == "atan":
        a = deriv_params[0]
        d = (a / 2) / (1 + (math.pi * a * x / 2) ** 2)
    else:
        raise AssertionError(deriv)
    return (1 - blend) * d + blend * exact


def rand(*shape, dtype=torch.float64, seed=0, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype)


# A model whose row i goes through activation SPECS[i]: each row's gradient is
# one module's factor. Scriptable (typed loop), for the TorchScript tests too.
class Parallel(nn.Module):
    """acts[i] applied to xs[i]: each row's gradient is one module's factor."""

    def __init__(self, acts):
        super().__init__()
        self.acts = nn.ModuleList(acts)

    def forward(self, xs: Tensor) -> Tensor:
        outs = []
        for i, a in enumerate(self.acts):
            outs.append(a(xs[i]))
        return torch.stack(outs)


SPECS = [("relu", []), ("leaky_relu", [0.2]), ("sigmoid", []), ("tanh", [])]


def make_parallel():
    return Parallel([ann.ReLU(), ann.LeakyReLU(0.2), ann.Sigmoid(), ann.Tanh()])
