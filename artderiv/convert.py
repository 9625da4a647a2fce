"""Swap torch.nn activations for artderiv modules in an existing model, and back."""

import math
import operator
from typing import Any, Iterable, List, Optional, Union, cast

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


# What Module.__call__ runs besides forward (the kwargs and always-call
# companions are missing from some torch versions).
_HOOK_ATTRS = (
    "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks", "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called", "_backward_pre_hooks", "_backward_hooks", "_is_full_backward_hook",
)


def _take_place(old: nn.Module, new: nn.Module) -> nn.Module:
    """``new``, given ``old``'s training flag and hooks. The hooks move: the
    dicts themselves, so the handles that registered them (a Monitor's, say)
    still remove them; ``old``, out of the model now, is left with none."""
    new.training = old.training
    for attr in _HOOK_ATTRS:
        if attr in vars(old):
            value = vars(old)[attr]
            vars(new)[attr] = value
            vars(old)[attr] = None if attr == "_is_full_backward_hook" else type(value)()
    return new


def _replace_modules(model: nn.Module, make, owner: str) -> nn.Module:
    """Puts make(m) in place of every module m of ``model`` (``model`` included)
    for which it is not None, and searches the others. A module in several
    places gets one replacement, so it stays shared. Every replacement is made
    before anything changes: an error leaves ``model`` as it was."""
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(
            f"artderiv.{owner}: the model is a TorchScript module, whose submodules cannot be replaced; "
            f"{owner} the eager model before torch.jit.script / trace"
        )
    replacement = make(model)
    if replacement is not None:
        return _take_place(model, replacement)
    replacements = {id(model): None}  # id(module) -> its replacement; None: kept
    slots = []

    def search(module):
        # _modules, not named_children(), which yields a module once however many places it fills.
        for name, child in module._modules.items():
            if child is None:
                continue
            if id(child) not in replacements:
                new = make(child)
                replacements[id(child)] = new if new is None else _take_place(child, new)
                if new is None:
                    search(child)
            if replacements[id(child)] is not None:
                slots.append((module, name, replacements[id(child)]))

    search(model)
    for module, name, new in slots:
        setattr(module, name, new)
    return model


def convert(
    model: nn.Module,
    derivative: DerivativeLike = None,
    activations: Optional[Iterable[ActivationSelector]] = None,
) -> nn.Module:
    """Replaces matching torch.nn activation modules anywhere in ``model``
    (nested, in Sequential, ModuleList, ModuleDict, attributes) with artderiv
    modules computing the same forward, and returns ``model`` (changed in place).
    A replaced module's hooks move to its replacement (the module itself, if
    another model still holds it, keeps none), its training mode carries over,
    and a module used in several places gets one artderiv module there too.

    ``activations``: torch.nn types or names (one, or a list) to convert;
    default ReLU, LeakyReLU and ReLU6. ``derivative``: for every converted module (None: each
    activation's default). Activations called functionally (F.relu) are not
    modules and stay as they are. A TorchScript model is a TypeError: convert
    before scripting.
    """
    types = _resolve_types(activations)

    def make(child):
        if type(child) in types:
            return MODULE_FOR_TORCH[type(child)].from_torch(child, derivative)
        return None

    return _replace_modules(model, make, "convert")


def restore(model: nn.Module) -> nn.Module:
    """Replaces every artderiv module in ``model`` by its torch.nn original
    (hooks and training mode carried over, as by convert). Modules torch.nn has
    no counterpart of (Step, Sign, BSiLU, NeLU) stay in place."""

    def make(child):
        if isinstance(child, Activation) and child._torch_class is not None:
            return child.to_torch()
        return None

    return _replace_modules(model, make, "restore")


def set_derivative(model: nn.Module, derivative: DerivativeLike) -> nn.Module:
    """Sets the derivative of every artderiv module in ``model``. For a scripted
    model, pass the ScriptModule: its attributes are updated in place. A traced
    model has the derivative baked into its graph: that raises a TypeError. A
    model without artderiv modules (a torch.nn one, a torch.jit.freeze'd one)
    raises a ValueError."""
    for m in model.modules():
        if _is_traced_artderiv(m):
            raise TypeError(
                "artderiv.set_derivative: a torch.jit.trace'd model has its derivative baked into the "
                "graph as constants; set the derivative before tracing, or use torch.jit.script "
                "(whose derivative attributes can be changed)."
            )
    for m in _artderiv_modules(model, "set_derivative"):
        if isinstance(m, Activation):
            m.set_derivative(derivative)
        else:  # a TorchScript RecursiveScriptModule of an artderiv module (attributes untyped)
            scripted: Any = m
            scripted.derivative_name, scripted.derivative_params = _as_derivative(
                scripted.activation_name, derivative).args()
    return model


def set_blend(model: nn.Module, value: float) -> nn.Module:
    """Sets blend (0: artificial only, 1: exact only) on every artderiv module;
    a ValueError where ``model`` has none (as for set_derivative)."""
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"artderiv.set_blend: blend must be in [0, 1], got {value}")
    for m in _artderiv_modules(model, "set_blend"):
        _write_blend(m, float(value))
    return model


def _artderiv_modules(model: nn.Module, owner: str) -> List[nn.Module]:
    """The artderiv modules of ``model``; a ValueError where there are none,
    since then nothing the caller asked for would happen."""
    found = [m for m in model.modules() if _is_artderiv(m)]
    if not found:
        raise ValueError(
            f"artderiv.{owner}: the model has no artderiv modules (see artderiv.convert; a "
            "torch.jit.freeze'd model has them folded into its graph: set derivative and blend before freezing)"
        )
    return found


def _write_blend(m: nn.Module, value: float) -> None:
    if isinstance(m, Activation):
        m.set_blend(value)  # also the value its reset_parameters() restores
    else:  # scripted or traced: the buffer only
        with torch.no_grad():
            _blend_buffer(m).fill_(value)


def _blend_buffer(m: nn.Module) -> torch.Tensor:
    """An artderiv module's blend buffer (also a scripted one's)."""
    return cast(torch.Tensor, m.blend)


def _whole_number(name: str, value, least: int) -> int:
    """An integer, or a number with no fraction (1e4, numpy or tensor scalars, as
    a checkpoint may hold them), of at least `least`: 1.9 steps or inf would
    otherwise be cut silently, or fail deep inside int()."""
    try:
        number = operator.index(value)
    except TypeError:
        if isinstance(value, (str, bytes)):
            raise TypeError(f"artderiv.BlendSchedule: {name} must be a whole number, got {value!r}") from None
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"artderiv.BlendSchedule: {name} must be a whole number, got {value!r}") from None
        if not as_float.is_integer():  # also inf and NaN
            raise ValueError(f"artderiv.BlendSchedule: {name} must be a whole number, got {value!r}") from None
        number = int(as_float)
    if number < least:
        raise ValueError(f"artderiv.BlendSchedule: {name} must be >= {least}, got {number}")
    return number


class BlendSchedule:
    """Anneals ``blend`` on every artderiv module of a model, from the
    artificial derivative (``start=0``) to the exact one (``end=1``), over
    ``steps`` calls of ``step()``: linear or cosine. The modules' blend buffers
    (whichever they hold, after ``model.to(...)`` too) are updated in place,
    so a compiled model neither recompiles nor syncs::

        schedule = artderiv.BlendSchedule(model, steps=len(loader) * epochs)
        for batch in loader:
            ...; optimizer.step(); schedule.step()

    ``state_dict()`` / ``load_state_dict()`` save and resume it with a
    checkpoint, as torch's LR schedulers do (the blend buffers are not in the
    model's state_dict).
    """

    def __init__(self, model: nn.Module, start: float = 0.0, end: float = 1.0, steps: int = 1000,
                 shape: str = "linear"):
        self._set(start, end, steps, shape, 0)
        # The modules, not their buffers: model.to() / .double() puts new buffers in them.
        self.modules: List[nn.Module] = _artderiv_modules(model, "BlendSchedule")
        self._apply()

    def _set(self, start, end, steps, shape, t) -> None:
        for name, v in (("start", start), ("end", end)):
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"artderiv.BlendSchedule: {name} must be in [0, 1], got {v}")
        steps, t = _whole_number("steps", steps, 1), _whole_number("t", t, 0)
        if shape not in ("linear", "cosine"):
            raise ValueError(f"artderiv.BlendSchedule: shape is {shape!r}; allowed: 'linear', 'cosine'")
        self.start, self.end, self.steps, self.shape, self.t = float(start), float(end), steps, shape, t

    @property
    def buffers(self) -> List[torch.Tensor]:
        """The blend buffers the modules hold now."""
        return [_blend_buffer(m) for m in self.modules]

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
        for m in self.modules:
            _write_blend(m, v)
        return v

    def state_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "steps": self.steps, "shape": self.shape, "t": self.t}

    def load_state_dict(self, state: dict) -> None:
        """Takes up a saved schedule where it was, and sets the blends to its value."""
        self._set(state["start"], state["end"], state["steps"], state["shape"], state["t"])
        self._apply()


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
