"""The implementations artderiv is measured against.

For each benchmark case (activation, derivative): the native PyTorch op with
its exact derivative; the usual recipe, a Python autograd.Function whose
backward is built from torch ops; and the same recipe under torch.compile.
"""

import functools
import math
import sys
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

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


# The activation's forward with torch ops: the recipes' forward, and the native
# peer (the cost floor of "no extra cost") where PyTorch has the function.
FORWARD: Dict[str, Callable] = {
    "relu": torch.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "step": lambda x: (x > 0).to(x.dtype),
}
# PyTorch has no step: its native baseline is ReLU (same bytes moved).
NATIVE: Dict[str, Callable] = {**FORWARD, "step": torch.relu}

# The recipe's backward factor d(x), written with torch ops as users do today.
FACTORS: Dict[str, Callable] = {
    "relu:sigmoid": lambda x: torch.sigmoid(x),
    "relu:exact": lambda x: (x > 0).to(x.dtype),
    "leaky_relu:sigmoid": lambda x: torch.sigmoid(x),
    "sigmoid:exact_plus": lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x)) + 0.05,
    "tanh:exact_plus": lambda x: 1 - torch.tanh(x) ** 2 + 0.05,
    "tanh:atan": lambda x: 1.0 / (1 + (math.pi * x) ** 2),
    "relu:atan": lambda x: 1.0 / (1 + (math.pi * x) ** 2),
    "step:atan": lambda x: 1.0 / (1 + (math.pi * x) ** 2),
}


def parse_case(text: str) -> Case:
    activation, _, derivative = text.partition(":")
    if activation not in FORWARD or f"{activation}:{derivative}" not in FACTORS:
        raise SystemExit(f"unknown case {text!r}; known: {', '.join(FACTORS)}")
    return Case(activation, derivative)


def artderiv_fn(case: Case) -> Callable:
    """What a user calls: the public function, e.g. artderiv.relu(x, derivative="sigmoid")
    (it passes save="auto": the output is saved where that spares the backward work)."""
    fn = getattr(artderiv, case.activation)
    der = case.derivative
    if case.derivative_params:
        der = getattr(artderiv.derivatives, case.derivative)(*case.derivative_params)
    ap = list(case.activation_params)
    if not ap:
        # As a user writes it: a call through *ap, even an empty one, took
        # ~3,400 more instructions (callgrind), a fifth of the whole call.
        return lambda x: fn(x, derivative=der)
    return lambda x: fn(x, *ap, derivative=der)


def eager_recipe(case: Case) -> Callable:
    forward, factor = FORWARD[case.activation], FACTORS[case.name]

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
    if case.name != "step:atan":  # the SNN libraries' surrogates: Heaviside forward
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


@functools.lru_cache(maxsize=None)
def implementations(case: Case, peers: Tuple[str, ...]) -> Dict[str, Callable]:
    """Built once per case: a compiled recipe must be the same object across
    sizes and dtypes, or every size would recompile."""
    impls = {"artderiv": artderiv_fn(case)}
    if "native" in peers:
        impls["native"] = NATIVE[case.activation]
    if "again" in peers:
        # The A/A control: the native op again under another name. Its ratio
        # to "native" would be 1 on a quiet machine; what it is instead shows
        # how far a ratio moves by noise alone, in the same rounds.
        impls["native_again"] = lambda x, f=NATIVE[case.activation]: f(x)
    if "eager" in peers:
        impls["eager_recipe"] = eager_recipe(case)
    if "compiled" in peers:
        impls["compiled_recipe"] = compiled_recipe(case)
    if "snn" in peers:
        found = snn_peers(case)
        if case.name == "step:atan" and not found:
            print("  (snn peers: snntorch / spikingjelly not installed, skipped; "
                  "pip install --no-deps snntorch spikingjelly)", file=sys.stderr)
        impls.update(found)
    return impls
