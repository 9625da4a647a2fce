"""Modules mirroring torch.nn, with an artificial derivative in the backward.

    model = nn.Sequential(nn.Linear(8, 8), artderiv.nn.ReLU(derivative="sigmoid"))

Every module stores its derivative as ``derivative_name: str`` and
``derivative_params: List[float]`` (the op's arguments) and ``blend`` as a
buffer, so it scripts with TorchScript, traces, and compiles with
``torch.compile(fullgraph=True)``. Changing the derivative of a compiled model
recompiles (the name and parameters are guarded constants). Changing ``blend``
(a tensor) does not.
"""

import warnings
from typing import List

import torch
from torch import Tensor, nn

from ._library import catalog
from .derivatives import Derivative, DerivativeLike

__all__ = ["Activation", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "MODULE_FOR_TORCH"]

_warned_inplace = False


def _as_derivative(activation: str, derivative: DerivativeLike) -> Derivative:
    """None/"default" -> the activation's default shape, with parameters filled in."""
    if derivative is None or derivative == "default":
        default = {a["name"]: a["default_derivative"] for a in catalog()["activations"]}
        return Derivative(default[activation])
    if isinstance(derivative, str):
        return Derivative(derivative)
    if isinstance(derivative, Derivative):
        return derivative
    raise TypeError(
        f"artderiv.nn: argument 'derivative' must be None, a name (str) or an "
        f"artderiv.derivatives object, got {type(derivative).__name__}"
    )


class Activation(nn.Module):
    """Base of the artderiv modules: a catalog activation plus a derivative."""

    # Python-side conveniences that TorchScript must not compile.
    __jit_unused_properties__ = ["derivative", "negative_slope"]

    activation_name: str
    activation_params: List[float]
    derivative_name: str
    derivative_params: List[float]

    def __init__(self, activation: str, activation_params: List[float], derivative: DerivativeLike, inplace: bool = False):
        super().__init__()
        self.activation_name = activation
        self.activation_params = [float(p) for p in activation_params]
        self.inplace = inplace
        if inplace:
            # The artificial backward needs the input, which an in-place forward
            # would overwrite: compute out of place (same values), warn once.
            global _warned_inplace
            if not _warned_inplace:
                _warned_inplace = True
                warnings.warn(
                    "artderiv.nn: inplace=True is computed out of place: the artificial "
                    "derivative needs the activation's input in the backward.",
                    stacklevel=3,
                )
        # blend in [0, 1]: the backward uses (1 - blend) * artificial + blend * exact.
        self.register_buffer("blend", torch.zeros((), dtype=torch.float32), persistent=False)
        self.set_derivative(derivative)

    def set_derivative(self, derivative: DerivativeLike) -> None:
        """Switches the backward to another derivative shape (name or object)."""
        d = _as_derivative(self.activation_name, derivative)
        self.derivative_name, self.derivative_params = d.args()

    @property
    def derivative(self) -> Derivative:
        return Derivative(self.derivative_name, **dict(zip(self._param_names(), self.derivative_params)))

    def _param_names(self) -> List[str]:
        spec = {d["name"]: d for d in catalog()["derivatives"]}[self.derivative_name]
        return [p["name"] for p in spec["params"]]

    def set_blend(self, value: float) -> None:
        """Sets blend in place (no recompile, no new tensor)."""
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"artderiv.nn.{type(self).__name__}: blend must be in [0, 1], got {value}")
        with torch.no_grad():
            self.blend.fill_(float(value))

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.artderiv.activation(
            x,
            self.activation_name,
            self.activation_params,
            self.derivative_name,
            self.derivative_params,
            self.blend,
            "input",
        )

    def _extra_repr_prefix(self) -> str:
        return ""

    def extra_repr(self) -> str:
        parts = [self._extra_repr_prefix()] if self._extra_repr_prefix() else []
        if self.inplace:
            parts.append("inplace=True")
        parts.append(f"derivative={self.derivative!r}")
        if float(self.blend) != 0.0:
            parts.append(f"blend={float(self.blend):g}")
        return ", ".join(parts)

    # conversion to and from torch.nn
    @classmethod
    def from_torch(cls, module: nn.Module, derivative: DerivativeLike = None) -> "Activation":
        raise NotImplementedError

    def to_torch(self) -> nn.Module:
        raise NotImplementedError


class ReLU(Activation):
    """ReLU forward; backward default ``sigmoid(beta=1)``: sigma(x) (Hu et al. 2021)."""

    def __init__(self, inplace: bool = False, *, derivative: DerivativeLike = None):
        super().__init__("relu", [], derivative, inplace)

    @classmethod
    def from_torch(cls, module: nn.ReLU, derivative: DerivativeLike = None) -> "ReLU":
        return cls(module.inplace, derivative=derivative)

    def to_torch(self) -> nn.ReLU:
        return nn.ReLU(self.inplace)


class LeakyReLU(Activation):
    """LeakyReLU forward; backward default ``sigmoid(beta=1)``."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, *, derivative: DerivativeLike = None):
        super().__init__("leaky_relu", [negative_slope], derivative, inplace)

    @property
    def negative_slope(self) -> float:
        return self.activation_params[0]

    def _extra_repr_prefix(self) -> str:
        return f"negative_slope={self.negative_slope:g}"

    @classmethod
    def from_torch(cls, module: nn.LeakyReLU, derivative: DerivativeLike = None) -> "LeakyReLU":
        return cls(module.negative_slope, module.inplace, derivative=derivative)

    def to_torch(self) -> nn.LeakyReLU:
        return nn.LeakyReLU(self.negative_slope, self.inplace)


class Sigmoid(Activation):
    """Sigmoid forward; backward default ``exact_plus(c=0.05)`` (Roodschild et al. 2020)."""

    def __init__(self, *, derivative: DerivativeLike = None):
        super().__init__("sigmoid", [], derivative)

    @classmethod
    def from_torch(cls, module: nn.Sigmoid, derivative: DerivativeLike = None) -> "Sigmoid":
        return cls(derivative=derivative)

    def to_torch(self) -> nn.Sigmoid:
        return nn.Sigmoid()


class Tanh(Activation):
    """Tanh forward; backward default ``exact_plus(c=0.05)``."""

    def __init__(self, *, derivative: DerivativeLike = None):
        super().__init__("tanh", [], derivative)

    @classmethod
    def from_torch(cls, module: nn.Tanh, derivative: DerivativeLike = None) -> "Tanh":
        return cls(derivative=derivative)

    def to_torch(self) -> nn.Tanh:
        return nn.Tanh()


# torch.nn type -> artderiv module type, for artderiv.convert / restore.
MODULE_FOR_TORCH = {nn.ReLU: ReLU, nn.LeakyReLU: LeakyReLU, nn.Sigmoid: Sigmoid, nn.Tanh: Tanh}
