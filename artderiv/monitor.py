"""See where gradients vanish or die, in any model.

    mon = artderiv.Monitor(model)        # hooks every activation module
    loss = criterion(model(x), y)
    loss.backward()
    print(mon.table())                   # per layer: gradient norm reaching it, % zero derivative
    mon.remove()

Works with artderiv modules and with torch.nn activations alike. For each
activation layer it records, from the last forward and backward pass:
  * ``grad_norm``: the L2 norm of the gradient reaching the layer (w.r.t. its output);
  * ``zero_fraction``: the fraction of elements whose derivative, the factor the
    layer's backward multiplies in, is (near) zero (|d| <= tol): dead ReLUs,
    saturated sigmoids, and for an artderiv layer the artificial derivative it uses;
  * ``mean_derivative``: the mean of |d| over the last input.
"""

from typing import Dict, Iterable, List, Optional, Union

import torch
from torch import nn

from .nn import MODULE_FOR_TORCH, Activation

__all__ = ["Monitor", "ACTIVATION_TYPES"]

# torch.nn activation types the monitor recognises, besides artderiv modules.
ACTIVATION_TYPES = tuple(MODULE_FOR_TORCH) + (nn.Softsign, nn.Tanhshrink, nn.LogSigmoid, nn.PReLU)


def _derivative(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The factor the module's backward multiplies into an incoming gradient at x."""
    with torch.enable_grad():
        # A copy: x may be an inference tensor (recorded under inference_mode),
        # which cannot require grad.
        xr = x.detach().clone().requires_grad_()
        # forward(), not __call__: module hooks (the Monitor's own, the user's) must not
        # fire. The clone keeps an in-place forward off the leaf xr.
        y = module.forward(xr.clone())
        (d,) = torch.autograd.grad(y, xr, torch.ones_like(y))
    return d


def _as_types(types) -> tuple:
    """``types`` (a class or an iterable of classes) as a tuple, for isinstance."""
    try:
        kinds = (types,) if isinstance(types, type) else tuple(types)
    except TypeError:
        kinds = None
    if kinds is None or not all(isinstance(k, type) for k in kinds):
        raise TypeError(f"artderiv.Monitor: types must be an iterable of module classes, got {types!r}")
    return kinds


class Monitor:
    """Hooks every activation module of ``model``: artderiv modules, and instances of
    ``types`` (a module class or an iterable of them; ``ACTIVATION_TYPES`` by default).
    Per module it records its last input and the norm of the gradient w.r.t. its
    output; ``stats()``, ``table()`` and ``plot()`` read them without changing them.

    A module called more than once per forward (shared) is listed once: its input
    is the last call's, its gradient norm that of the call whose backward ran last
    (usually the first). The input of an in-place activation (``inplace=True``) is
    copied before the module overwrites it. ``remove()`` (or leaving a ``with``
    block) removes the hooks and drops the recorded inputs, so call ``stats()`` or
    ``table()`` before it.
    """

    def __init__(self, model: nn.Module, tol: float = 1e-6, types: Optional[Union[type, Iterable[type]]] = None):
        self.tol = tol
        kinds = (Activation,) + (ACTIVATION_TYPES if types is None else _as_types(types))
        self.layers: Dict[str, nn.Module] = {
            name or type(model).__name__: m for name, m in model.named_modules() if isinstance(m, kinds)
        }
        if not self.layers:
            raise ValueError("artderiv.Monitor: the model has no activation modules to watch")
        self._inputs: Dict[str, torch.Tensor] = {}
        self._grad_norms: Dict[str, float] = {}
        self._handles = []
        for name, m in self.layers.items():
            self._handles.append(m.register_forward_pre_hook(self._pre_hook(name)))
            self._handles.append(m.register_forward_hook(self._forward_hook(name)))

    def _pre_hook(self, name):
        def hook(module, inputs):
            # The module that ran: after convert() / restore(), which move the
            # hooks, its replacement, whose derivative stats() must use.
            self.layers[name] = module
            x = inputs[0].detach()
            # An in-place forward would overwrite x before a forward hook could see it
            # (artderiv modules compute out of place even with inplace=True).
            in_place = getattr(module, "inplace", False) and not isinstance(module, Activation)
            self._inputs[name] = x.clone() if in_place else x

        return hook

    def _forward_hook(self, name):
        # A tensor hook on the output, not a module backward hook: the latter wraps the
        # output in a view that in-place activations (ReLU(inplace=True)) may not modify.
        def record(grad):
            self._grad_norms[name] = grad.detach().float().norm().item()

        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and output.requires_grad:
                output.register_hook(record)

        return hook

    def stats(self) -> List[dict]:
        """One dict per activation layer, in model order."""
        rows = []
        for name, m in self.layers.items():
            row = {"layer": name, "type": type(m).__name__, "grad_norm": self._grad_norms.get(name)}
            if isinstance(m, Activation):
                row["derivative"] = repr(m.derivative)
            x = self._inputs.get(name)
            if x is not None:
                d = _derivative(m, x).abs().float()
                row["zero_fraction"] = (d <= self.tol).float().mean().item()
                row["mean_derivative"] = d.mean().item()
            rows.append(row)
        return rows

    def table(self) -> str:
        lines = [f"{'layer':<24} {'type':<12} {'grad norm':>11} {'zero deriv':>10} {'mean |d|':>9}  derivative"]
        for r in self.stats():
            g = "-" if r["grad_norm"] is None else f"{r['grad_norm']:.3e}"
            z = "-" if "zero_fraction" not in r else f"{100 * r['zero_fraction']:.1f}%"
            md = "-" if "mean_derivative" not in r else f"{r['mean_derivative']:.3f}"
            lines.append(f"{r['layer']:<24} {r['type']:<12} {g:>11} {z:>10} {md:>9}  {r.get('derivative', 'exact (torch.nn)')}")
        return "\n".join(lines)

    def plot(self, path: str, title: str = "artderiv.Monitor") -> str:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.stats()
        idx = list(range(len(rows)))
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
        a.semilogy(idx, [r["grad_norm"] or float("nan") for r in rows], marker="o")
        a.set_xlabel("activation layer")
        a.set_ylabel("gradient norm reaching it")
        b.plot(idx, [100 * r.get("zero_fraction", float("nan")) for r in rows], marker="o", color="tab:red")
        b.set_xlabel("activation layer")
        b.set_ylabel("% elements with zero derivative")
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._inputs.clear()  # the recorded inputs would keep their tensors alive

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
