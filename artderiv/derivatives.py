"""Artificial derivative shapes.

A derivative is a shape name plus parameters, e.g. ``sigmoid(beta=4.0)``. The
functions of this module are made from the C++ catalog (csrc/formulas.h), the
one place where shapes, parameters and defaults are defined::

    import artderiv
    d = artderiv.derivatives.sigmoid(beta=4.0)   # sigma(4x) in the backward
    y = artderiv.relu(x, derivative=d)
    y = artderiv.relu(x, derivative="atan")       # a name: default parameters
"""

import inspect
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from ._library import catalog

__all__ = ["Derivative", "resolve"]


def _number_text(v: float) -> str:
    """v as a repr shows it: short (1, 0.01), but exact where short is not
    (1.0000001 is not 1): eval(repr(d)) == d."""
    short = f"{v:g}"
    return short if float(short) == v else repr(float(v))


def _specs() -> Dict[str, dict]:
    return {d["name"]: d for d in catalog()["derivatives"]}


def _like_target(name: str) -> Optional[str]:
    """For "like:<g>", g; None for any other derivative name."""
    return name[len("like:"):] if name.startswith("like:") else None


def _param_specs(name: str) -> List[dict]:
    """Parameter specs of a derivative name; for like:<g>, the activation g's."""
    other = _like_target(name)
    if other is not None:
        acts = {a["name"]: a for a in catalog()["activations"]}
        if other not in acts:
            raise ValueError(
                f"artderiv.derivatives.like: unknown activation {other!r}; allowed: {', '.join(acts)}"
            )
        return acts[other]["params"]
    specs = _specs()
    if name not in specs or name == "like":
        allowed = [n for n in specs if n != "like"] + ["like:<activation>"]
        raise ValueError(f"artderiv.derivatives: unknown derivative {name!r}; allowed: {', '.join(allowed)}")
    return specs[name]["params"]


def _argument_type_error(owner: str, arg: str, value, expected: str) -> TypeError:
    """The TypeError for a bad argument of `owner` ("artderiv.leaky_relu",
    "artderiv.nn.LeakyReLU"), with a hint where a derivative went to a
    positional parameter."""
    hint = "; pass the derivative by keyword: derivative=..." if isinstance(value, (str, Derivative)) else ""
    return TypeError(f"{owner}: argument {arg!r} must be {expected}, got {value!r}{hint}")


def _to_float(value, error: Callable[[], Exception]) -> float:
    """float(value), or error() where float() refuses it (a string, a list, a
    tensor of several elements, ...)."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError, RuntimeError):
        raise error() from None


def _float_argument(owner: str, arg: str, value) -> float:
    """float(value), or _argument_type_error's TypeError."""
    return _to_float(value, lambda: _argument_type_error(owner, arg, value, "a number"))


def _owner(name: str) -> str:
    """How errors name the object of derivative `name`, as the op's do:
    artderiv.derivatives.sigmoid, artderiv.derivatives.like('elu')."""
    target = _like_target(name)
    return f"artderiv.derivatives.{name if target is None else f'like({target!r})'}"


def _as_number(name: str, pname: str, value) -> float:
    return _to_float(value, lambda: TypeError(f"{_owner(name)}: parameter {pname!r} must be a number, got {value!r}"))


def _check_values(name: str, values: List[float]) -> None:
    """The op's own checks of the values (csrc/catalog.cpp: constraints, also
    as float32, and checks between values), so they raise when the object is
    made. Under torch.compile the op runs them when it is traced."""
    if not torch.compiler.is_compiling():
        torch.ops.artderiv.check_derivative(name, values)


class Derivative:
    """A derivative shape and its parameter values (defaults filled in).

    Modules store it as ``(name, [values])``, the form the op takes, so they
    script with TorchScript.
    """

    __slots__ = ("name", "params")
    name: str
    params: Dict[str, Any]  # numbers; for table, knots and values: lists of numbers

    def __init__(self, name: str, **params: float) -> None:
        if name == "table":
            self.name, self.params = name, _table_params(**params)
            return
        specs = _param_specs(name)
        known = [p["name"] for p in specs]
        unknown = set(params) - set(known)
        if unknown:
            raise TypeError(f"{_owner(name)}: unknown parameter(s) {sorted(unknown)}; allowed: {known or 'none'}")
        self.name = name
        self.params = {p["name"]: _as_number(name, p["name"], params.get(p["name"], p["default"])) for p in specs}
        _check_values(name, list(self.params.values()))

    def args(self) -> Tuple[str, List[float]]:
        """(name, parameter values in catalog order): the op's arguments."""
        if self.name == "table":
            return self.name, list(self.params["knots"]) + list(self.params["values"])
        return self.name, list(self.params.values())

    def __repr__(self) -> str:
        if self.name == "table":
            return f"table(knots={self.params['knots']}, values={self.params['values']})"
        inner = ", ".join(f"{k}={_number_text(v)}" for k, v in self.params.items())
        target = _like_target(self.name)
        if target is not None:
            return f"like({target!r}{', ' if inner else ''}{inner})"
        return f"{self.name}({inner})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Derivative) and self.args() == other.args()

    def __hash__(self) -> int:
        name, values = self.args()
        return hash((name, tuple(values)))


def _table_params(knots=None, values=None, **extra) -> dict:
    if extra or knots is None or values is None:
        raise TypeError("artderiv.derivatives.table: takes knots and values (two sequences of numbers)")
    knots = [_as_number("table", "knots", k) for k in knots]
    values = [_as_number("table", "values", v) for v in values]
    most = catalog()["max_table_knots"]
    if len(knots) != len(values) or not 2 <= len(knots) <= most:  # the op takes one list: knots, then values
        raise ValueError(
            f"artderiv.derivatives.table: knots and values must have the same length, 2 to {most}; "
            f"got {len(knots)} and {len(values)}"
        )
    try:
        _check_values("table", knots + values)
    except ValueError as e:  # the op's message, with the numbers it does not repeat
        raise ValueError(f"{str(e).splitlines()[0]}; got knots {knots}, values {values}") from None
    return {"knots": knots, "values": values}


def like(activation: str, **params: float) -> Derivative:
    """The exact derivative of another catalog activation, e.g. ``like("elu")``
    or ``like("softplus", beta=4)``. For ReLU, like("elu"), like("silu"),
    like("gelu"), like("b_silu"), like("nelu") are the SUGAR surrogates
    (Horuz et al. 2025)."""
    return Derivative(f"like:{activation}", **params)


def table(knots: Sequence[float], values: Sequence[float]) -> Derivative:
    """Any shape: linear interpolation of (knots, values), constant outside;
    2 to 16 strictly increasing knots. Evaluated inside the C++/CUDA kernels."""
    return Derivative("table", knots=knots, values=values)


DerivativeLike = Union[None, str, Derivative]


def resolve(derivative: DerivativeLike) -> Tuple[str, List[float]]:
    """Turns None, a name or a Derivative into the op's (name, params).

    None and "default" mean the activation's default derivative; a bare name
    means that shape with its default parameters (the C++ side fills them).
    """
    if derivative is None:
        return "default", []
    if isinstance(derivative, str):
        return derivative, []
    if isinstance(derivative, Derivative):
        return derivative.args()
    raise TypeError(
        "artderiv: argument 'derivative' must be None, a name (str) or an "
        f"artderiv.derivatives object, got {type(derivative).__name__}"
    )


def _make_factory(spec: dict):
    params = [
        inspect.Parameter(p["name"], inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p["default"], annotation=float)
        for p in spec["params"]
    ]
    signature = inspect.Signature(params, return_annotation=Derivative)
    name = spec["name"]

    def factory(*args, **kwargs) -> Derivative:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:  # "too many positional arguments", named
            raise TypeError(f"artderiv.derivatives.{name}: {e}; parameters: {described or 'none'}") from None
        return Derivative(name, **bound.arguments)

    described = ", ".join(f"{p['name']}={p['default']:g} ({p['constraint']})" for p in spec["params"])
    factory.__name__ = factory.__qualname__ = name
    factory.__signature__ = signature
    factory.__doc__ = (
        f"Derivative shape ``{name}``: {spec['formula']}.\n\n"
        f"Parameters: {described or 'none'}.\nSource: {spec['source']}."
    )
    return factory


for _spec in catalog()["derivatives"]:
    if _spec["name"] not in ("like", "table"):  # those two have their own signatures above
        globals()[_spec["name"]] = _make_factory(_spec)
    __all__.append(_spec["name"])
del _spec
