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

from typing import Dict, List, Optional

import torch
from torch import nn

from .nn import MODULE_FOR_TORCH, Activation

__all__ = ["Monitor", "ACTIVATION_TYPES"]

# torch.nn activation types the monitor recognises, besides artderiv modules.
ACTIVATION_TYPES = tuple(MODULE_FOR_TORCH) + (nn.Softsign, nn.Tanhshrink, nn.LogSigmoid, nn.PReLU)


def _derivative(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The factor the module's backward multiplies into an incoming gradient at x."""
    with torch.enable_grad():
        xr = x.detach().clone().requires_grad_()
        y = module(xr)
        (d,) = torch.autograd.grad(y, xr, torch.ones_like(y))
    return d


class Monitor:
    def __init__(self, model: nn.Module, tol: float = 1e-6, types: Optional[tuple] = None):
        self.tol = tol
        kinds = (Activation,) + (types if types is not None else ACTIVATION_TYPES)
        self.layers: Dict[str, nn.Module] = {
            name or type(model).__name__: m for name, m in model.named_modules() if isinstance(m, kinds)
        }
        if not self.layers:
            raise ValueError("artderiv.Monitor: the model has no activation modules to watch")
        self._inputs: Dict[str, torch.Tensor] = {}
        self._grad_norms: Dict[str, float] = {}
        self._handles = []
        for name, m in self.layers.items():
            self._handles.append(m.register_forward_hook(self._forward_hook(name)))
            self._handles.append(m.register_full_backward_hook(self._backward_hook(name)))

    def _forward_hook(self, name):
        def hook(module, inputs, output):
            self._inputs[name] = inputs[0].detach()

        return hook

    def _backward_hook(self, name):
        def hook(module, grad_input, grad_output):
            if grad_output[0] is not None:
                self._grad_norms[name] = grad_output[0].detach().float().norm().item()

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

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
