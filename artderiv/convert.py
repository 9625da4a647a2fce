"""Swap torch.nn activations for artderiv modules in an existing model, and back."""

import math
from typing import Iterable, List, Optional, Union

import torch

from torch import nn

from .derivatives import DerivativeLike
from .nn import _CLASSES, MODULE_FOR_TORCH, Activation, _as_derivative

__all__ = ["convert", "restore", "set_derivative", "set_blend", "BlendSchedule", "DEFAULT_ACTIVATIONS"]

# The ReLU family only: converting gates (an SE block's Sigmoid, an LSTM-like
# Tanh) changes more than most users mean. Other types opt in.
DEFAULT_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ReLU6)

ActivationSelector = Union[type, str]


def _resolve_types(activations):
    if activations is None:
        return DEFAULT_ACTIVATIONS
    if isinstance(activations, (str, type)):  # one selector instead of a list
        activations = [activations]
    try:
        activations = list(activations)
    except TypeError:
        raise TypeError(
            "artderiv.convert: argument 'activations' must be a torch.nn activation type, a name, "
            f"or a list of them; got {activations!r}"
        ) from None
    # torch.nn class names (any case) and catalog names: "LeakyReLU", "leaky_relu".
    by_name = {t.__name__.lower(): t for t in MODULE_FOR_TORCH}
    by_name.update({name: cls._torch_class for name, cls in _CLASSES.items() if cls._torch_class is not None})
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

    ``activations``: torch.nn types or names (one, or a list) to convert;
    default ReLU, LeakyReLU and ReLU6. ``derivative``: for every converted module (None: each
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
    model, pass the ScriptModule: its attributes are updated in place. A traced
    model has the derivative baked into its graph: that raises a TypeError."""
    for m in model.modules():
        if _is_traced_artderiv(m):
            raise TypeError(
                "artderiv.set_derivative: a torch.jit.trace'd model has its derivative baked into the "
                "graph as constants; set the derivative before tracing, or use torch.jit.script "
                "(whose derivative attributes can be changed)."
            )
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
    with torch.no_grad():
        for m in model.modules():
            if _is_artderiv(m):
                m.blend.fill_(float(value))
    return model


class BlendSchedule:
    """Anneals ``blend`` on every artderiv module of a model, from the
    artificial derivative (``start=0``) to the exact one (``end=1``), over
    ``steps`` calls of ``step()``: linear or cosine. The blend buffers are
    updated in place, so a compiled model neither recompiles nor syncs::

        schedule = artderiv.BlendSchedule(model, steps=len(loader) * epochs)
        for batch in loader:
            ...; optimizer.step(); schedule.step()
    """

    def __init__(self, model: nn.Module, start: float = 0.0, end: float = 1.0, steps: int = 1000,
                 shape: str = "linear"):
        for name, v in (("start", start), ("end", end)):
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"artderiv.BlendSchedule: {name} must be in [0, 1], got {v}")
        if int(steps) < 1:
            raise ValueError(f"artderiv.BlendSchedule: steps must be >= 1, got {steps}")
        if shape not in ("linear", "cosine"):
            raise ValueError(f"artderiv.BlendSchedule: shape is {shape!r}; allowed: 'linear', 'cosine'")
        self.buffers: List[torch.Tensor] = [m.blend for m in model.modules() if _is_artderiv(m)]
        if not self.buffers:
            raise ValueError("artderiv.BlendSchedule: the model has no artderiv modules (see artderiv.convert)")
        self.start, self.end, self.steps, self.shape = float(start), float(end), int(steps), shape
        self.t = 0
        self._apply()

    def value(self) -> float:
        f = min(self.t, self.steps) / self.steps
        if self.shape == "cosine":
            f = 0.5 - 0.5 * math.cos(math.pi * f)
        return self.start + (self.end - self.start) * f

    def step(self) -> float:
        self.t += 1
        return self._apply()

    def _apply(self) -> float:
        v = self.value()
        with torch.no_grad():
            for b in self.buffers:
                b.fill_(v)
        return v


_CLASS_NAMES = {cls.__name__ for cls in _CLASSES.values()}


def _is_traced_artderiv(m: nn.Module) -> bool:
    """A submodule of a torch.jit.trace'd model that was an artderiv module."""
    return isinstance(m, torch.jit.ScriptModule) and not hasattr(m, "activation_name") and (
        getattr(m, "original_name", None) in _CLASS_NAMES and hasattr(m, "blend")
    )


def _is_artderiv(m: nn.Module) -> bool:
    """An artderiv module: eager, scripted (attributes kept) or traced (its blend buffer kept)."""
    return (
        isinstance(m, Activation)
        or (hasattr(m, "derivative_name") and hasattr(m, "activation_name") and hasattr(m, "blend"))
        or _is_traced_artderiv(m)
    )
