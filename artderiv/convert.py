"""Swap torch.nn activations for artderiv modules in an existing model, and back."""

from typing import Iterable, Optional, Union

from torch import nn

from .derivatives import DerivativeLike
from .nn import MODULE_FOR_TORCH, Activation, _as_derivative

__all__ = ["convert", "restore", "set_derivative", "set_blend", "DEFAULT_ACTIVATIONS"]

# The ReLU family only: converting gates (an SE block's Sigmoid, an LSTM-like
# Tanh) changes more than most users mean. Other types opt in.
DEFAULT_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU)

ActivationSelector = Union[type, str]


def _resolve_types(activations: Optional[Iterable[ActivationSelector]]):
    if activations is None:
        return DEFAULT_ACTIVATIONS
    by_name = {}
    for t in MODULE_FOR_TORCH:
        by_name[t.__name__.lower()] = t
    by_name["leaky_relu"] = nn.LeakyReLU
    types = []
    for a in activations:
        if isinstance(a, str):
            key = a.lower()
            if key not in by_name:
                raise ValueError(
                    f"artderiv.convert: argument 'activations' has unknown name {a!r}; "
                    f"allowed: {sorted(by_name)}"
                )
            types.append(by_name[key])
        elif isinstance(a, type) and a in MODULE_FOR_TORCH:
            types.append(a)
        else:
            raise TypeError(
                f"artderiv.convert: argument 'activations' must hold torch.nn activation types "
                f"or names, allowed: {[t.__name__ for t in MODULE_FOR_TORCH]}; got {a!r}"
            )
    return tuple(types)


def _replace_children(module: nn.Module, make) -> None:
    for name, child in module.named_children():
        replacement = make(child)
        if replacement is not None:
            setattr(module, name, replacement)
        else:
            _replace_children(child, make)


def convert(
    model: nn.Module,
    derivative: DerivativeLike = None,
    activations: Optional[Iterable[ActivationSelector]] = None,
) -> nn.Module:
    """Replaces matching torch.nn activation modules anywhere in ``model``
    (nested, in Sequential, ModuleList, ModuleDict, attributes) with artderiv
    modules computing the same forward, and returns ``model`` (changed in place).

    ``activations``: torch.nn types or names to convert; default ReLU and
    LeakyReLU. ``derivative``: for every converted module (None: each
    activation's default). Activations called functionally (F.relu) are not
    modules and stay as they are.
    """
    types = _resolve_types(activations)

    def make(child):
        if type(child) in types:
            return MODULE_FOR_TORCH[type(child)].from_torch(child, derivative)
        return None

    if type(model) in types:
        return make(model)
    _replace_children(model, make)
    return model


def restore(model: nn.Module) -> nn.Module:
    """Replaces every artderiv module in ``model`` by its torch.nn original."""
    if isinstance(model, Activation):
        return model.to_torch()
    _replace_children(model, lambda c: c.to_torch() if isinstance(c, Activation) else None)
    return model


def set_derivative(model: nn.Module, derivative: DerivativeLike) -> nn.Module:
    """Sets the derivative of every artderiv module in ``model``. For a scripted
    model, pass the ScriptModule: its attributes are updated in place."""
    for m in model.modules():
        if _is_artderiv(m):
            if isinstance(m, Activation):
                m.set_derivative(derivative)
            else:  # a TorchScript RecursiveScriptModule of an artderiv module
                m.derivative_name, m.derivative_params = _as_derivative(m.activation_name, derivative).args()
    return model


def set_blend(model: nn.Module, value: float) -> nn.Module:
    """Sets blend (0: artificial only, 1: exact only) on every artderiv module."""
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"artderiv.set_blend: blend must be in [0, 1], got {value}")
    for m in model.modules():
        if _is_artderiv(m):
            m.blend.fill_(float(value))
    return model


def _is_artderiv(m: nn.Module) -> bool:
    return isinstance(m, Activation) or (
        hasattr(m, "derivative_name") and hasattr(m, "activation_name") and hasattr(m, "blend")
    )
