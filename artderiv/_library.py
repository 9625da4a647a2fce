"""Loads the compiled op library and reads its catalog."""

import functools
import glob
import json
import os

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))


def library_path() -> str:
    """Path of the compiled op library (also loadable from libtorch C++)."""
    found = sorted(glob.glob(os.path.join(_HERE, "_C*.so")) + glob.glob(os.path.join(_HERE, "_C*.pyd")))
    if not found:
        raise ImportError(
            "artderiv: the compiled op library (artderiv/_C*.so) is missing. Build it with "
            "'pip install --no-build-isolation -e .' (or 'make build') in the artderiv source tree."
        )
    return found[0]


torch.ops.load_library(library_path())


def _eager_entry(schema: str):
    """The dispatcher's boxed call of an op, for eager calls on plain tensors:
    what ``overload._op`` does after checking every argument for
    ``__torch_function__`` (about 1 us of a 7 us small call). Callers check
    the tensors with ``torch._C._has_torch_function_*`` first, which also
    sees torch function modes, and give dynamo another path (it cannot trace
    this call). None where torch lacks these bindings or cannot substitute a
    traceable function for dynamo."""
    boxed = getattr(torch._C, "_dispatch_call_boxed", None)
    find = getattr(torch._C, "_dispatch_find_schema_or_throw", None)
    if boxed is None or find is None or getattr(torch.compiler, "substitute_in_graph", None) is None:
        return None
    return boxed, find(schema, "")


# (call, handle) for artderiv::activation: call(handle, x, activation, ...).
boxed_activation = _eager_entry("artderiv::activation")


@functools.lru_cache(maxsize=None)
def catalog() -> dict:
    """Every activation and derivative the library knows, as defined in csrc/formulas.h."""
    data = json.loads(torch.ops.artderiv.catalog())
    for entry in data["activations"] + data["derivatives"]:
        for p in entry["params"]:
            p["default"] = float(p["default"])
    return data


def cpu_kernel_isa() -> str:
    """The CPU kernel build in use: DEFAULT, AVX2 or AVX512 (ATEN_CPU_CAPABILITY lowers it)."""
    return torch.ops.artderiv.cpu_kernel_isa()
