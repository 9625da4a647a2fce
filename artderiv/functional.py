"""Functional API: the activation's normal forward, an artificial derivative backward.

Every function takes ``derivative``: None (the activation's default), a name
such as ``"sigmoid"`` (default parameters) or an ``artderiv.derivatives``
object such as ``derivatives.sigmoid(beta=4.0)``; and ``blend`` in [0, 1]: the
backward uses ``(1 - blend) * artificial + blend * exact``. ``blend`` may be a
float or a one-element tensor (a tensor can change every step without
recompiling a compiled model).
"""

from typing import List, Optional, Union

import torch
from torch import Tensor

from . import _library  # noqa: F401  (loads the op library)
from .derivatives import DerivativeLike, resolve

__all__ = ["activation", "relu", "leaky_relu", "sigmoid", "tanh"]

BlendLike = Union[None, float, Tensor]


def activation(
    x: Tensor,
    name: str,
    activation_params: Optional[List[float]] = None,
    derivative: DerivativeLike = None,
    blend: BlendLike = None,
) -> Tensor:
    """Any catalog activation by name, e.g. ``activation(x, "leaky_relu", [0.2], "atan")``."""
    deriv_name, deriv_params = resolve(derivative)
    if blend is not None and not isinstance(blend, Tensor):
        blend = torch.tensor(float(blend), dtype=torch.float64)
    return torch.ops.artderiv.activation(
        x, name, activation_params or [], deriv_name, deriv_params, blend, "input"
    )


def relu(x: Tensor, derivative: DerivativeLike = None, *, blend: BlendLike = None) -> Tensor:
    """ReLU forward; backward default ``sigmoid(beta=1)`` (Hu, Zhang & Ge 2021)."""
    return activation(x, "relu", None, derivative, blend)


def leaky_relu(
    x: Tensor,
    negative_slope: float = 0.01,
    derivative: DerivativeLike = None,
    *,
    blend: BlendLike = None,
) -> Tensor:
    """LeakyReLU forward; backward default ``sigmoid(beta=1)``."""
    return activation(x, "leaky_relu", [float(negative_slope)], derivative, blend)


def sigmoid(x: Tensor, derivative: DerivativeLike = None, *, blend: BlendLike = None) -> Tensor:
    """Sigmoid forward; backward default ``exact_plus(c=0.05)`` (Roodschild et al. 2020)."""
    return activation(x, "sigmoid", None, derivative, blend)


def tanh(x: Tensor, derivative: DerivativeLike = None, *, blend: BlendLike = None) -> Tensor:
    """Tanh forward; backward default ``exact_plus(c=0.05)``."""
    return activation(x, "tanh", None, derivative, blend)
