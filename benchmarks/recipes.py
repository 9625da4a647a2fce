"""The implementations artderiv is measured against.

For each benchmark case (activation, derivative): the native PyTorch op with
its exact derivative; the usual recipe, a Python autograd.Function whose
backward is built from torch ops; and the same recipe under torch.compile.
"""

import math
from dataclasses import dataclass
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

import artderiv


@dataclass(frozen=True)
class Case:
    activation: str
    derivative: str
    activation_params: tuple = ()
    derivative_params: tuple = ()

    @property
    def name(self) -> str:
        return f"{self.activation}:{self.derivative}"


# Native forward of each activation (the cost floor of "no extra cost").
NATIVE: Dict[str, Callable] = {
    "relu": torch.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}

# The recipe's backward factor d(x), written with torch ops as users do today.
FACTORS: Dict[str, Callable] = {
    "relu:sigmoid": lambda x: torch.sigmoid(x),
    "relu:exact": lambda x: (x > 0).to(x.dtype),
    "leaky_relu:sigmoid": lambda x: torch.sigmoid(x),
    "sigmoid:exact_plus": lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x)) + 0.05,
    "tanh:exact_plus": lambda x: 1 - torch.tanh(x) ** 2 + 0.05,
    "tanh:atan": lambda x: 1.0 / (1 + (math.pi * x) ** 2),
    "relu:atan": lambda x: 1.0 / (1 + (math.pi * x) ** 2),
}


def parse_case(text: str) -> Case:
    activation, _, derivative = text.partition(":")
    if activation not in NATIVE or f"{activation}:{derivative}" not in FACTORS:
        raise SystemExit(f"unknown case {text!r}; known: {', '.join(FACTORS)}")
    return Case(activation, derivative)


def artderiv_fn(case: Case) -> Callable:
    act, ap, der, dp = case.activation, list(case.activation_params), case.derivative, list(case.derivative_params)
    op = torch.ops.artderiv.activation
    return lambda x: op(x, act, ap, der, dp, None, "input")


def eager_recipe(case: Case) -> Callable:
    forward, factor = NATIVE[case.activation], FACTORS[case.name]

    class Recipe(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return forward(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * factor(x)

    return Recipe.apply


def compiled_recipe(case: Case) -> Callable:
    # dynamic=True: one graph for every size, not a recompile per size.
    return torch.compile(eager_recipe(case), dynamic=True, fullgraph=True)


def snn_peers(case: Case) -> Dict[str, Callable]:
    """snnTorch / SpikingJelly surrogates with the same shape, if installed."""
    peers: Dict[str, Callable] = {}
    if case.derivative != "atan":
        return peers
    try:  # SpikingJelly ATan(alpha=2): Heaviside forward, atan surrogate backward
        from spikingjelly.activation_based import surrogate

        peers["spikingjelly"] = surrogate.ATan(alpha=2.0)
    except Exception:
        pass
    try:  # snnTorch atan(alpha=2): Heaviside forward, atan surrogate backward
        from snntorch import surrogate as snn_surrogate

        peers["snntorch"] = snn_surrogate.atan(alpha=2.0)
    except Exception:
        pass
    return peers


def implementations(case: Case, peers: List[str]) -> Dict[str, Callable]:
    impls = {"artderiv": artderiv_fn(case)}
    if "native" in peers:
        impls["native"] = NATIVE[case.activation]
    if "eager" in peers:
        impls["eager_recipe"] = eager_recipe(case)
    if "compiled" in peers:
        impls["compiled_recipe"] = compiled_recipe(case)
    if "snn" in peers:
        impls.update(snn_peers(case))
    return impls
