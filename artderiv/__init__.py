"""artderiv: artificial derivatives for PyTorch.

The activation's normal forward, a chosen derivative in the backward, in
fused C++/CUDA kernels registered as TorchScript-compatible custom ops with
autograd in C++::

    import artderiv
    y = artderiv.relu(x)                                   # sigmoid(x) in the backward
    y = artderiv.relu(x, derivative=artderiv.derivatives.sigmoid(beta=4.0))
    y = artderiv.sigmoid(x, derivative="exact_plus")      # sigma'(x) + 0.05

See docs/ops.md for the op contract and docs/derivatives.md for the shapes.
"""

from . import derivatives, functional, nn
from ._library import catalog, cpu_kernel_isa, library_path
from .convert import BlendSchedule, convert, restore, set_blend, set_derivative
from .derivatives import Derivative
from .functional import *  # noqa: F401,F403  (one function per catalog activation)
from .monitor import Monitor

__version__ = "0.1.0"

# A literal list, extended below: what type checkers read as the exports.
__all__ = [
    "BlendSchedule",
    "Derivative",
    "Monitor",
    "catalog",
    "convert",
    "cpu_kernel_isa",
    "derivatives",
    "library_path",
    "list_activations",
    "list_derivatives",
    "nn",
    "restore",
    "set_blend",
    "set_derivative",
]
__all__ += functional.__all__


def list_activations() -> dict:
    """{name: {"params": {param: default}, "default_derivative": name}}."""
    return {
        a["name"]: {
            "params": {p["name"]: p["default"] for p in a["params"]},
            "default_derivative": a["default_derivative"],
        }
        for a in catalog()["activations"]
    }


def list_derivatives() -> dict:
    """{name: {"params": {param: default}, "formula": str, "source": str}}
    (``like`` takes another activation's parameters, ``table`` knots and values)."""
    return {
        d["name"]: {
            "params": {p["name"]: p["default"] for p in d["params"]},
            "formula": d["formula"],
            "source": d["source"],
        }
        for d in catalog()["derivatives"]
    }
