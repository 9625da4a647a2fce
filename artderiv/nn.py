"""Modules mirroring torch.nn, with an artificial derivative in the backward.

    model = nn.Sequential(nn.Linear(8, 8), artderiv.nn.ReLU(derivative="sigmoid"))

One module per catalog activation, with torch.nn's class name, argument names,
order and defaults (``LeakyReLU(negative_slope=0.01, inplace=False)``), plus a
keyword-only ``derivative``. Every module stores its derivative as
``derivative_name: str`` and ``derivative_params: List[float]`` (the op's
arguments) and ``blend`` as a buffer, so it scripts with TorchScript, traces,
and compiles with ``torch.compile(fullgraph=True)``. Changing the derivative of
a compiled model recompiles (the name and parameters are guarded constants);
changing ``blend`` (a tensor, updated in place) does not.
"""

import inspect
import warnings
from typing import Callable, Dict, List, Optional, Type, TypeVar

import torch
from torch import Tensor, nn

from ._library import boxed_ops, catalog
from .derivatives import (
    Derivative,
    DerivativeLike,
    _argument_type_error,
    _check_values,
    _float_argument,
    _number_text,
    _param_specs,
    _to_float,
)

__all__ = ["Activation", "GELU", "MODULE_FOR_TORCH", "module_class"]

_warned_inplace = False
_boxed, _handle = (boxed_ops.call, boxed_ops.activation) if boxed_ops else (None, None)
_has_torch_function_variadic = torch._C._has_torch_function_variadic

# torch.nn's class name of each activation and whether it takes `inplace`.
# An activation without an entry gets a CamelCase name and no `inplace`.
_TORCH_STYLE = {
    "relu": ("ReLU", True),
    "relu6": ("ReLU6", True),
    "leaky_relu": ("LeakyReLU", True),
    "elu": ("ELU", True),
    "selu": ("SELU", True),
    "celu": ("CELU", True),
    "softplus": ("Softplus", False),
    "sigmoid": ("Sigmoid", False),
    "hardsigmoid": ("Hardsigmoid", True),
    "tanh": ("Tanh", False),
    "hardtanh": ("Hardtanh", True),
    "silu": ("SiLU", True),
    "hardswish": ("Hardswish", True),
    "mish": ("Mish", True),
    "step": ("Step", False),
    "sign": ("Sign", False),
    "b_silu": ("BSiLU", False),
    "nelu": ("NeLU", False),
}


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


_A = TypeVar("_A", bound="Activation")


class Activation(nn.Module):
    """Base of the artderiv modules: a catalog activation plus a derivative."""

    # Python-side conveniences that TorchScript must not compile.
    __jit_unused_properties__ = ["derivative"]

    activation_name: str
    activation_params: List[float]
    derivative_name: str
    derivative_params: List[float]
    inplace: bool
    blend: Tensor  # a one-element buffer

    def __init__(self, activation: str, activation_params: List[float], derivative: DerivativeLike,
                 inplace: bool = False) -> None:
        super().__init__()
        # A derivative passed positionally, ReLU("atan"), lands here. Anything
        # else torch.nn takes (bools of numpy or torch, 0 / 1) is truth-tested.
        if isinstance(inplace, (str, Derivative)):
            raise _argument_error(type(self).__name__, "inplace", inplace, "a bool")
        self.activation_name = activation
        self.activation_params = [float(p) for p in activation_params]
        self.inplace = bool(inplace)
        if self.inplace:
            # The artificial backward mostly needs the input, which an in-place
            # forward would overwrite: compute out of place (same values), warn once.
            global _warned_inplace
            if not _warned_inplace:
                _warned_inplace = True
                warnings.warn(
                    "artderiv.nn: inplace=True is computed out of place: artificial "
                    "derivatives generally need the activation's input in the backward.",
                    stacklevel=3,
                )
        # blend in [0, 1]: the backward uses (1 - blend) * artificial + blend * exact.
        # _blend: the configured value, which reset_parameters() writes back
        # (the buffer is non-persistent: after to_empty() it holds garbage).
        self._blend = 0.0
        self.register_buffer("blend", torch.zeros((), dtype=torch.float32), persistent=False)
        self.set_derivative(derivative)
        if not torch.compiler.is_compiling():
            # The op's own checks (hardtanh's min_val < max_val, softplus's beta > 0,
            # finite values) at construction, not at the first forward: a module
            # the op would reject cannot run (torch.nn.Hardtanh checks its bounds here too).
            torch.ops.artderiv.activation(torch.empty(0, device="cpu"), activation, self.activation_params,
                                          self.derivative_name, self.derivative_params)

    def set_derivative(self, derivative: DerivativeLike) -> None:
        """Switches the backward to another derivative shape (name or object)."""
        d = _as_derivative(self.activation_name, derivative)
        self.derivative_name, self.derivative_params = d.args()

    @property
    def derivative(self) -> Derivative:
        return _derivative_from_args(self.derivative_name, self.derivative_params)

    def set_blend(self, value: float) -> None:
        """Sets blend in place (no recompile, no new tensor)."""
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"artderiv.nn.{type(self).__name__}: blend must be in [0, 1], got {value}")
        self._blend = float(value)
        with torch.no_grad():
            self.blend.fill_(self._blend)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        if "_blend" not in self.__dict__:  # pickled before _blend existed
            self._blend = 0.0 if self.blend.is_meta else float(self.blend)

    def reset_parameters(self) -> None:
        """Writes the configured blend (0 unless set) back into the buffer, as
        after meta-device initialisation: ``model.to_empty(device=...)`` leaves
        the non-persistent buffer uninitialised."""
        with torch.no_grad():
            self.blend.fill_(self._blend)

    def forward(self, x: Tensor) -> Tensor:
        if not torch.jit.is_scripting():
            y = self._eager_shortcut(x)
            if y is not None:
                return y
        return torch.ops.artderiv.activation(
            x,
            self.activation_name,
            self.activation_params,
            self.derivative_name,
            self.derivative_params,
            self.blend,
            "auto",  # save y where the backward needs only f' (sigmoid, tanh): no exp
        )

    @torch.jit.unused
    def _eager_shortcut(self, x: Tensor) -> Optional[Tensor]:
        # Eager, plain tensors: the op's boxed call, with the buffer read from
        # _buffers rather than through Module.__getattr__ (benchmarks/RESULTS.md,
        # item 3). None for subclasses, torch function modes, dynamo (which
        # cannot trace the boxed call) and a blend that is no longer a buffer
        # (a Parameter, a parametrization): they take the op.
        buffers = self._buffers
        if _boxed is None or "blend" not in buffers:
            return None
        blend = buffers["blend"]
        if _has_torch_function_variadic(x, blend) or torch.compiler.is_compiling():
            return None
        return _boxed(_handle, x, self.activation_name, self.activation_params, self.derivative_name,
                      self.derivative_params, blend, "auto")

    def _activation_repr(self) -> List[str]:
        specs = {a["name"]: a for a in catalog()["activations"]}[self.activation_name]["params"]
        return [f"{p['name']}={_number_text(v)}" for p, v in zip(specs, self.activation_params)]

    def extra_repr(self) -> str:
        parts = self._activation_repr()
        if self.inplace:
            parts.append("inplace=True")
        try:
            parts.append(f"derivative={self.derivative!r}")
        except (ValueError, TypeError):  # derivative_name or _params assigned by hand: repr still works
            parts.append(f"derivative_name={self.derivative_name!r}, derivative_params={self.derivative_params!r}")
        blend = self._blend if self.blend.is_meta else float(self.blend)  # a meta tensor has no value
        if blend != 0.0:
            parts.append(f"blend={blend:g}")  # a float32 buffer: 6 digits say enough
        return ", ".join(parts)

    # conversion to and from torch.nn
    @classmethod
    def from_torch(cls: Type[_A], module: nn.Module, derivative: DerivativeLike = None) -> _A:
        """The artderiv module computing the same forward as a torch.nn one."""
        kwargs = {p: getattr(module, p) for p in cls._torch_args}
        return cls(**kwargs, derivative=derivative)

    def to_torch(self) -> nn.Module:
        """The torch.nn module with the same forward; a TypeError for an
        activation torch.nn does not have (Step, Sign, ...)."""
        if self._torch_class is None:
            raise TypeError(f"artderiv.nn.{type(self).__name__} has no torch.nn counterpart")
        kwargs = {p: getattr(self, p) for p in self._torch_args}
        return self._torch_class(**kwargs)

    _torch_class: Type[nn.Module] = None
    _torch_args: List[str] = []


def _argument_error(owner: str, arg: str, value, expected: str) -> TypeError:
    return _argument_type_error(f"artderiv.nn.{owner}", arg, value, expected)


def _number_argument(owner: str, arg: str, value, in_call: bool = True) -> float:
    """float(value), or a TypeError naming the module and the argument (in a
    constructor call, with a hint for a derivative passed positionally)."""
    if in_call:
        return _float_argument(f"artderiv.nn.{owner}", arg, value)
    return _to_float(value, lambda: TypeError(f"artderiv.nn.{owner}: {arg!r} must be a number, got {value!r}"))


def _derivative_from_args(name: str, values: List[float]) -> Derivative:
    _check_values(name, values)  # the op's checks: also a list longer than the parameters
    if name == "table":
        n = len(values) // 2
        return Derivative("table", knots=values[:n], values=values[n:])
    specs = _param_specs(name)  # a ValueError naming the allowed ones for an unknown name
    return Derivative(name, **{p["name"]: v for p, v in zip(specs, values)})


def _make_module(spec: dict) -> Type[Activation]:
    name = spec["name"]
    pspecs = spec["params"]
    class_name, has_inplace = _TORCH_STYLE.get(name, ("".join(w.title() for w in name.split("_")), False))
    torch_class = getattr(nn, class_name, None)
    param_names = [p["name"] for p in pspecs]
    defaults = [p["default"] for p in pspecs]

    names = param_names + (["inplace"] if has_inplace else [])

    def __init__(self, *args, derivative: DerivativeLike = None, **kwargs):
        if len(args) > len(names):
            raise TypeError(f"artderiv.nn.{class_name}: takes at most {len(names)} positional arguments")
        values = dict(zip(param_names, defaults), inplace=False)
        for key in names[:len(args)]:
            if key in kwargs:  # as Python says for torch.nn's own signatures
                raise TypeError(f"artderiv.nn.{class_name}: got multiple values for argument {key!r}")
        for key, value in list(zip(names, args)) + list(kwargs.items()):
            if key not in names:
                raise TypeError(f"artderiv.nn.{class_name}: unexpected argument {key!r}; allowed: {names}")
            values[key] = value
        for p in param_names:
            _number_argument(class_name, p, values[p])
        Activation.__init__(self, name, [values[p] for p in param_names], derivative, values["inplace"])

    # What help() and IDEs show: torch.nn's arguments, then `derivative`.
    P = inspect.Parameter
    __init__.__signature__ = inspect.Signature(
        [P("self", P.POSITIONAL_OR_KEYWORD)]
        + [P(n, P.POSITIONAL_OR_KEYWORD, default=d, annotation=float) for n, d in zip(param_names, defaults)]
        + ([P("inplace", P.POSITIONAL_OR_KEYWORD, default=False, annotation=bool)] if has_inplace else [])
        + [P("derivative", P.KEYWORD_ONLY, default=None, annotation=DerivativeLike)],
        return_annotation=None,
    )
    described = ", ".join(f"{n}={d:g}" for n, d in zip(param_names, defaults)) or "no parameters"
    attrs = {
        "__init__": __init__,
        "__doc__": f"{f'torch.nn.{class_name}' if torch_class else f'``{name}``'} forward ({described}"
        f"{', inplace=False' if has_inplace else ''}); backward: the chosen derivative "
        f"(default ``{spec['default_derivative']}``).",
        "__module__": __name__,
        "__qualname__": class_name,
        "_torch_class": torch_class,
        "_torch_args": param_names + (["inplace"] if has_inplace else []),
    }
    # torch.nn-style attributes (module.negative_slope, module.alpha, ...):
    # views of activation_params, assignable as in torch.nn, hidden from TorchScript.
    for i, pname in enumerate(param_names):
        def getter(self, i=i) -> float:
            return self.activation_params[i]

        def setter(self, value: float, i=i, pname=pname) -> None:
            self.activation_params[i] = _number_argument(class_name, pname, value, in_call=False)

        attrs[pname] = property(getter, setter)
    attrs["__jit_unused_properties__"] = ["derivative"] + param_names
    return type(class_name, (Activation,), attrs)


class GELU(Activation):
    """torch.nn.GELU forward (approximate="none" or "tanh"); backward default ``exact``."""

    _torch_class = nn.GELU
    _torch_args = ["approximate"]
    __jit_unused_properties__ = ["derivative", "approximate"]

    def __init__(self, approximate: str = "none", *, derivative: DerivativeLike = None) -> None:
        super().__init__(_gelu_activation(approximate), [], derivative)

    # A view of activation_name, so that assigning it changes the forward.
    @property
    def approximate(self) -> str:
        return "tanh" if self.activation_name == "gelu_tanh" else "none"

    @approximate.setter
    def approximate(self, value: str) -> None:
        self.activation_name = _gelu_activation(value)

    def _activation_repr(self) -> List[str]:
        return [f"approximate={self.approximate!r}"] if self.approximate != "none" else []


def _gelu_activation(approximate: str) -> str:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"artderiv.nn.GELU: argument 'approximate' is {approximate!r}; allowed: 'none', 'tanh'")
    return "gelu" if approximate == "none" else "gelu_tanh"


_CLASSES: Dict[str, Type[Activation]] = {"gelu": GELU, "gelu_tanh": GELU}
for _spec in catalog()["activations"]:
    if _spec["name"] not in _CLASSES:
        _cls = _make_module(_spec)
        _CLASSES[_spec["name"]] = _cls
        globals()[_cls.__name__] = _cls
        __all__.append(_cls.__name__)
del _spec, _cls


def module_class(activation: str) -> Callable[..., Activation]:
    """The artderiv module class of a catalog activation name. (Typed as a
    callable: its arguments depend on the activation, Activation's do not.)"""
    return _CLASSES[activation]


# torch.nn type -> artderiv module type, for artderiv.convert / restore.
MODULE_FOR_TORCH: Dict[Type[nn.Module], Type[Activation]] = {
    cls._torch_class: cls for cls in set(_CLASSES.values()) if cls._torch_class is not None
}
