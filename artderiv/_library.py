"""Loads the compiled op library and reads its catalog."""

import glob
import json
import os
from typing import Any, Callable, NamedTuple, Optional

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


class BoxedOps(NamedTuple):
    """The dispatcher's boxed call and the handles it takes, as
    ``call(handle, x, ...)``."""

    call: Callable
    activation: Any  # artderiv::activation
    plain: Any  # artderiv::activation.plain: (x, activation, derivative, activation_params)


def _boxed_entry() -> Optional[BoxedOps]:
    """The dispatcher's boxed call of the op and of its ``plain`` overload,
    for eager calls on plain tensors: what ``overload._op`` does after
    scanning every argument for ``__torch_function__`` (benchmarks/RESULTS.md,
    item 3, has the saving).
    Callers check the tensors with ``torch._C._has_torch_function_*`` first,
    which also sees torch function modes, and keep the op's usual path for
    dynamo, which cannot trace this call (the functions tell it so with
    ``substitute_in_graph``, hence required). None where torch lacks any of
    this, or where a trial call fails (a changed private signature)."""
    boxed = getattr(torch._C, "_dispatch_call_boxed", None)
    find = getattr(torch._C, "_dispatch_find_schema_or_throw", None)
    if boxed is None or find is None or getattr(torch.compiler, "substitute_in_graph", None) is None:
        return None
    try:
        ops = BoxedOps(boxed, find("artderiv::activation", ""), find("artderiv::activation", "plain"))
        x, want = torch.tensor([-1.0, 2.0], device="cpu"), torch.tensor([0.0, 2.0], device="cpu")
        with torch.no_grad():
            trials = (boxed(ops.activation, x, "relu", save="auto"), boxed(ops.plain, x, "relu", "default"))
        if not all(torch.equal(trial, want) for trial in trials):
            return None
    except Exception:  # noqa: BLE001  (any failure: keep the op's usual path)
        return None
    return ops


boxed_ops = _boxed_entry()


def _read_catalog() -> dict:
    data = json.loads(torch.ops.artderiv.catalog())
    for entry in data["activations"] + data["derivatives"]:
        for p in entry["params"]:
            p["default"] = float(p["default"])
    return data


# Read once, at import: a function that makes a derivative object or a module
# then runs under torch.compile(fullgraph=True) too, where the op that returns
# the JSON text (not a tensor) cannot be traced.
_CATALOG = _read_catalog()


def catalog() -> dict:
    """Every activation and derivative the library knows, as defined in csrc/formulas.h."""
    return _CATALOG


def cpu_kernel_isa(activation: Optional[str] = None, dtype: Optional[torch.dtype] = None) -> str:
    """The CPU kernel build in use: DEFAULT, AVX2, AVX512, or AVX512BF16 (AVX512 CPUs
    with AVX512-BF16; ARTDERIV_AVX512BF16=0 keeps AVX512). ATEN_CPU_CAPABILITY lowers it.

    With an activation and a dtype: the build that runs that forward. On AVX512
    CPUs, the float and double forwards that are only compares and selects
    (relu, step, ...) run the AVX2 build, as ATen's own elementwise ops do:
    they are bound by memory, and there the AVX512 loops were measured slower."""
    return torch.ops.artderiv.cpu_kernel_isa(activation, dtype)
