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
import math
from typing import Dict, List, Tuple, Union

from ._library import catalog

__all__ = ["Derivative", "resolve"]

_CONSTRAINTS = {
    "positive": (lambda v: v > 0, "positive and finite"),
    "nonnegative": (lambda v: v >= 0, "non-negative and finite"),
    "finite": (lambda v: True, "finite"),
}


def _specs() -> Dict[str, dict]:
    return {d["name"]: d for d in catalog()["derivatives"]}


class Derivative:
    """A derivative shape and its parameter values (defaults filled in).

    Modules store it as ``(name, [values])``, the form the op takes, so they
    script with TorchScript.
    """

    __slots__ = ("name", "params")

    def __init__(self, name: str, **params: float):
        specs = _specs()
        if name not in specs:
            raise ValueError(
                f"artderiv.derivatives: unknown derivative {name!r}; allowed: {', '.join(specs)}"
            )
        spec = specs[name]
        known = [p["name"] for p in spec["params"]]
        unknown = set(params) - set(known)
        if unknown:
            raise TypeError(
                f"artderiv.derivatives.{name}: unknown parameter(s) {sorted(unknown)}; "
                f"allowed: {known or 'none'}"
            )
        values = {}
        for p in spec["params"]:
            value = params.get(p["name"], p["default"])
            ok, text = _CONSTRAINTS[p["constraint"]]
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"artderiv.derivatives.{name}: parameter {p['name']!r} must be a number, got {value!r}"
                ) from None
            if not (math.isfinite(value) and ok(value)):
                raise ValueError(
                    f"artderiv.derivatives.{name}: parameter {p['name']!r} must be {text}, got {value}"
                )
            values[p["name"]] = value
        self.name = name
        self.params = values

    def args(self) -> Tuple[str, List[float]]:
        """(name, parameter values in catalog order): the op's arguments."""
        return self.name, list(self.params.values())

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.name}({inner})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Derivative) and self.args() == other.args()

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.params.values())))


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
        inspect.Parameter(p["name"], inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p["default"])
        for p in spec["params"]
    ]
    signature = inspect.Signature(params, return_annotation=Derivative)
    name = spec["name"]

    def factory(*args, **kwargs) -> Derivative:
        bound = signature.bind(*args, **kwargs)
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
    globals()[_spec["name"]] = _make_factory(_spec)
    __all__.append(_spec["name"])
del _spec
