"""``artderiv demo``: when do artificial derivatives rescue training?

Three experiments on scikit-learn's digits (1797 8x8 images, 10 classes,
shipped with the package: nothing is downloaded), each run with plain SGD
(where vanishing gradients bite) and with Adam (which rescales per-parameter
gradients and can hide the effect), over several seeds:

1. vanishing gradients: sigmoid MLPs of increasing depth, trained with the
   exact derivative, exact_plus (Roodschild et al. 2020) and other shapes;
2. dying ReLU: a 6-hidden-layer ReLU MLP, He init, whose hidden biases are
   shifted by -1 (about a third of the units dead from the start), trained with
   exact, sigmoid (Hu et al. 2021) and the SUGAR surrogates like("elu") /
   like("b_silu"); reports the dead units (never active on the test set);
3. zero derivatives: step / sign hidden layers, whose exact derivative is 0:
   with exact only the readout learns; surrogates train the hidden layers.

    artderiv demo                 # about 3 minutes on 2 CPU cores
    artderiv demo --quick         # under 30 s
    artderiv demo --full --out results/

Outputs (in --out, default ./artderiv-demo): a table on the terminal,
results.json, and figures: accuracy_vs_depth.png, grad_norms.png,
dead_units.png, derivatives.png. Deterministic for a given --seed.
"""

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, cast

import torch
from torch import nn

from . import derivatives as D
from .monitor import Monitor
from .nn import module_class

TARGET_ACCURACY = 0.8


@dataclass
class Config:
    name: str
    depths: List[int]
    seeds: int
    epochs: int
    width: int = 64
    batch: int = 128
    # Plain SGD (no momentum) learning rate per activation family; Adam: one rate.
    sgd_lr: Dict[str, float] = field(default_factory=lambda: {"sigmoid": 1.0, "relu": 0.1, "step": 0.1, "sign": 0.1})
    adam_lr: float = 1e-3
    sigmoid_derivatives: List[str] = field(default_factory=list)
    relu_derivatives: List[str] = field(default_factory=list)
    binary_derivatives: List[str] = field(default_factory=list)
    relu_depth: int = 6
    binary_depth: int = 2


SIGMOID_DERIVS = ["exact", "exact_plus(c=0.05)", "floor(eps=0.05)", "like('tanh')"]
RELU_DERIVS = ["exact", "sigmoid(beta=1)", "like('elu')", "like('b_silu')"]
BINARY_DERIVS = ["exact", "atan(alpha=2)", "fast_sigmoid(slope=25)", "rectangle(alpha=1)"]

CONFIGS = {
    "quick": Config("quick", depths=[2, 3], seeds=2, epochs=6,
                    sigmoid_derivatives=SIGMOID_DERIVS[:2], relu_derivatives=RELU_DERIVS[:2],
                    binary_derivatives=BINARY_DERIVS[:2]),
    "default": Config("default", depths=[2, 3, 4, 6, 8], seeds=3, epochs=30,
                      sigmoid_derivatives=SIGMOID_DERIVS, relu_derivatives=RELU_DERIVS,
                      binary_derivatives=BINARY_DERIVS),
    "full": Config("full", depths=[1, 2, 3, 4, 5, 6, 8, 10, 20], seeds=5, epochs=60,
                   sigmoid_derivatives=SIGMOID_DERIVS + ["sigmoid_prime(alpha=1)", "identity()"],
                   relu_derivatives=RELU_DERIVS + ["like('silu')", "like('gelu')", "like('nelu')", "floor(eps=0.01)"],
                   binary_derivatives=BINARY_DERIVS + ["triangle(alpha=1)", "sigmoid_prime(alpha=4)"]),
}


def parse_derivative(text: str) -> D.Derivative:
    """'exact_plus(c=0.05)', "like('elu')", 'atan(alpha=2)' -> a Derivative (a safe, tiny parser)."""
    name, _, rest = text.partition("(")
    args, kwargs = [], {}
    for item in filter(None, (s.strip() for s in rest.rstrip(")").split(","))):
        if "=" in item:
            k, v = item.split("=")
            kwargs[k.strip()] = float(v)
        else:
            args.append(item.strip("'\""))
    if name == "like":
        return D.like(args[0], **kwargs)
    return D.Derivative(name, **kwargs)


def load_data(seed: int = 0):
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]  # (no stubs)

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    n_train = int(0.8 * len(x))
    mean, std = x[:n_train].mean(0), x[:n_train].std(0) + 1e-3
    x = (x - mean) / std
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


class MLP(nn.Module):
    """Linear -> activation, `depth` times, then a linear readout. PyTorch's
    default Linear init, or He (kaiming_normal_, relu) hidden weights; hidden
    biases shifted by `bias_shift`."""

    def __init__(self, activation: str, params: List[float], derivative, depth: int, width: int,
                 bias_shift: float = 0.0, he_init: bool = False):
        super().__init__()
        dims = [64] + [width] * depth
        linears = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]
        self.linears = nn.ModuleList(linears)
        self.acts = nn.ModuleList(module_class(activation)(*params, derivative=derivative) for _ in range(depth))
        self.readout = nn.Linear(width, 10)
        with torch.no_grad():
            for lin in linears:
                if he_init:
                    nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
                lin.bias.add_(bias_shift)

    def forward(self, x, record: Optional[list] = None):
        for lin, act in zip(self.linears, self.acts):
            x = act(lin(x))
            if record is not None:
                record.append(x)
        return self.readout(x)


@dataclass
class Run:
    experiment: str
    activation: str
    derivative: str
    optimizer: str
    depth: int
    seed: int
    test_accuracy: float = 0.0
    final_loss: float = 0.0
    epochs_to_target: Optional[int] = None
    dead_fraction: List[float] = field(default_factory=list)  # per epoch, ReLU only
    hidden_grad_norm: float = 0.0  # first hidden layer's weight gradient at the first step
    grad_norms_init: List[float] = field(default_factory=list)
    grad_norms_final: List[float] = field(default_factory=list)
    seconds: float = 0.0


def dead_fraction(model: MLP, x: torch.Tensor) -> float:
    """Fraction of hidden ReLU units never active (output > 0) on the evaluation set."""
    rec: list = []
    with torch.no_grad():
        model(x, rec)
    alive = torch.cat([(h > 0).any(0) for h in rec])
    return 1.0 - alive.float().mean().item()


def train(cfg: Config, data, experiment: str, activation: str, params: List[float], derivative: str,
          optimizer: str, depth: int, seed: int, bias_shift: float = 0.0, monitor: bool = False) -> Run:
    (xtr, ytr), (xte, yte) = data
    torch.manual_seed(seed)
    model = MLP(activation, params, parse_derivative(derivative), depth, cfg.width, bias_shift,
                he_init=activation == "relu")
    opt = (torch.optim.SGD(model.parameters(), lr=cfg.sgd_lr[activation]) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=cfg.adam_lr))
    run = Run(experiment, activation, derivative, optimizer, depth, seed)
    start = time.time()
    mon = Monitor(model) if monitor else None
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    step = 0
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(xtr), generator=gen)
        total, count = 0.0, 0
        for i in range(0, len(xtr), cfg.batch):
            idx = perm[i:i + cfg.batch]
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            if step == 0:
                first_grad = cast(nn.Linear, model.linears[0]).weight.grad
                assert first_grad is not None
                run.hidden_grad_norm = first_grad.norm().item()
                if mon:
                    run.grad_norms_init = [r["grad_norm"] or 0.0 for r in mon.stats()]
            opt.step()
            step += 1
            total += loss.item() * len(idx)
            count += len(idx)
        run.final_loss = total / count
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        if run.epochs_to_target is None and acc >= TARGET_ACCURACY:
            run.epochs_to_target = epoch + 1
        if activation == "relu":
            run.dead_fraction.append(dead_fraction(model, xte))
    run.test_accuracy = acc
    if mon:
        loss = loss_fn(model(xtr[: cfg.batch]), ytr[: cfg.batch])
        opt.zero_grad()
        loss.backward()
        run.grad_norms_final = [r["grad_norm"] or 0.0 for r in mon.stats()]
        mon.remove()
    run.seconds = time.time() - start
    return run


def plan(cfg: Config):
    """Every run of the demo: (experiment, activation, params, derivative, optimizer, depth, bias shift)."""
    jobs: List[Tuple[str, str, List[float], str, str, int, float]] = []
    for opt in ("sgd", "adam"):
        for depth in cfg.depths:
            for d in cfg.sigmoid_derivatives:
                jobs.append(("vanishing", "sigmoid", [], d, opt, depth, 0.0))
        for d in cfg.relu_derivatives:
            jobs.append(("dying_relu", "relu", [], d, opt, cfg.relu_depth, -1.0))
        for act in ("step", "sign"):
            for d in cfg.binary_derivatives:
                jobs.append(("zero_derivative", act, [], d, opt, cfg.binary_depth, 0.0))
    return jobs


def progress(done: int, total: int, start: float, label: str) -> None:
    """A progress bar on a terminal; a line per tenth of the runs otherwise (logs, CI)."""
    tty = sys.stderr.isatty()
    if not tty and done != total and done % max(1, total // 10):
        return
    width = 30
    filled = int(width * done / total)
    eta = (time.time() - start) / max(done, 1) * (total - done)
    line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} runs, ~{eta:.0f}s left  {label:<40}"
    sys.stderr.write(("\r" + line) if tty else (line.rstrip() + "\n"))
    if tty and done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def summarize(runs: List[Run]) -> List[dict]:
    cells: Dict[tuple, List[Run]] = {}
    for r in runs:
        cells.setdefault((r.experiment, r.activation, r.optimizer, r.depth, r.derivative), []).append(r)
    rows = []
    for (exp, act, opt, depth, deriv), rs in cells.items():
        accs = [r.test_accuracy for r in rs]
        reached = [r.epochs_to_target for r in rs if r.epochs_to_target is not None]
        row = {
            "experiment": exp, "activation": act, "optimizer": opt, "depth": depth, "derivative": deriv,
            "seeds": len(rs),
            "accuracy_mean": statistics.mean(accs), "accuracy_std": statistics.pstdev(accs),
            "loss_mean": statistics.mean(r.final_loss for r in rs),
            "epochs_to_target": statistics.median(reached) if reached else None,
            "reached_target": f"{len(reached)}/{len(rs)}",
            "hidden_grad_norm": statistics.mean(r.hidden_grad_norm for r in rs),
        }
        if rs[0].dead_fraction:
            row["dead_final"] = statistics.mean(r.dead_fraction[-1] for r in rs)
            row["dead_curve"] = [statistics.mean(v) for v in zip(*(r.dead_fraction for r in rs))]
        rows.append(row)
    return rows


def format_table(rows: List[dict]) -> str:
    out = []
    titles = {"vanishing": "1. vanishing gradients: sigmoid MLPs",
              "dying_relu": "2. dying ReLU: He init, hidden biases shifted by -1",
              "zero_derivative": "3. zero derivatives: step / sign hidden layers"}
    for exp, title in titles.items():
        sel = [r for r in rows if r["experiment"] == exp]
        if not sel:
            continue
        out.append(f"\n{title}")
        head = f"  {'act':<8} {'opt':<5} {'depth':>5} {'derivative':<24} {'test acc':>14} {'loss':>7} {'ep->80%':>8} {'|dW1| @0':>9}"
        if exp == "dying_relu":
            head += f" {'dead':>6}"
        out.append(head)
        for r in sel:
            ep = "never" if r["epochs_to_target"] is None else f"{r['epochs_to_target']:g}"
            line = (f"  {r['activation']:<8} {r['optimizer']:<5} {r['depth']:>5} {r['derivative']:<24} "
                    f"{100 * r['accuracy_mean']:6.1f} ± {100 * r['accuracy_std']:4.1f}% {r['loss_mean']:7.3f} "
                    f"{ep:>8} {r['hidden_grad_norm']:9.2e}")
            if exp == "dying_relu":
                line += f" {100 * r['dead_final']:5.1f}%"
            out.append(line)
    return "\n".join(out)


def figures(rows: List[dict], runs: List[Run], cfg: Config, out: str) -> List[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        paths.append(os.path.join(out, name))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    # accuracy vs depth per derivative (experiment 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, opt in zip(axes, ("sgd", "adam")):
        for d in cfg.sigmoid_derivatives:
            pts = sorted((r["depth"], r["accuracy_mean"], r["accuracy_std"]) for r in rows
                         if r["experiment"] == "vanishing" and r["optimizer"] == opt and r["derivative"] == d)
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3, label=d)
        ax.set_title(f"sigmoid MLP, {opt.upper()}", fontsize=10)
        ax.set_xlabel("hidden layers")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8)
    save(fig, "accuracy_vs_depth.png")

    # per-layer gradient norms at init and after training (deepest sigmoid net, SGD)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for r in runs:
        if r.grad_norms_init:
            style = "-" if r.derivative == "exact" else "--"
            ax.semilogy(range(1, len(r.grad_norms_init) + 1), r.grad_norms_init, style, marker="o", markersize=3,
                        label=f"{r.derivative}, at init")
            ax.semilogy(range(1, len(r.grad_norms_final) + 1), r.grad_norms_final, style, marker="x", markersize=3,
                        label=f"{r.derivative}, trained")
    ax.set_xlabel("activation layer (input side = 1)")
    ax.set_ylabel("gradient norm reaching the layer")
    ax.set_title(f"sigmoid MLP, {max(cfg.depths)} hidden layers, SGD", fontsize=10)
    ax.legend(fontsize=7)
    save(fig, "grad_norms.png")

    # dead-unit fraction over training (experiment 2)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, opt in zip(axes, ("sgd", "adam")):
        for row in rows:
            if row["experiment"] == "dying_relu" and row["optimizer"] == opt:
                ax.plot(range(1, len(row["dead_curve"]) + 1), [100 * v for v in row["dead_curve"]], marker=".",
                        label=row["derivative"])
        ax.set_title(f"ReLU MLP ({cfg.relu_depth} layers, He init, bias -1), {opt.upper()}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("% dead hidden units")
    axes[0].legend(fontsize=8)
    save(fig, "dead_units.png")

    # the derivative shapes used
    from .functional import activation as act_fn

    x = torch.linspace(-4, 4, 401, dtype=torch.float64)
    groups = [("sigmoid", cfg.sigmoid_derivatives), ("relu", cfg.relu_derivatives), ("step", cfg.binary_derivatives)]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (act, derivs) in zip(axes, groups):
        ax.plot(x, act_fn(x, act, None, "exact"), color="black", linewidth=1, label=f"{act}(x)")
        for d in derivs:
            xr = x.clone().requires_grad_()
            (g,) = torch.autograd.grad(act_fn(xr, act, None, parse_derivative(d)), xr, torch.ones_like(x))
            ax.plot(x, g, label=d)
        ax.set_title(f"{act}: derivatives used", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    save(fig, "derivatives.png")
    return paths


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="artderiv demo", description=__doc__.split("\n\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sweep, under 30 s")
    size.add_argument("--full", action="store_true", help="the larger sweep")
    p.add_argument("--out", default="artderiv-demo", help="folder for results.json and figures")
    p.add_argument("--seed", type=int, default=0, help="base seed (data split and runs)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: deterministic and fastest for these sizes)")
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)
    cfg = CONFIGS["quick" if args.quick else "full" if args.full else "default"]
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    data = load_data(args.seed)
    jobs = plan(cfg)
    deepest = max(cfg.depths)
    total = len(jobs) * cfg.seeds
    print(f"artderiv demo ({cfg.name}): {total} runs on digits ({len(data[0][0])} train / {len(data[1][0])} test), "
          f"width {cfg.width}, batch {cfg.batch}, {cfg.epochs} epochs, SGD (no momentum) lr {cfg.sgd_lr}, "
          f"Adam lr {cfg.adam_lr}, PyTorch default init, seeds {args.seed}..{args.seed + cfg.seeds - 1}")
    runs: List[Run] = []
    start = time.time()
    for job in jobs:
        exp, act, params, deriv, opt, depth, shift = job
        for s in range(cfg.seeds):
            seed = args.seed + s
            # Gradient norms per layer, for the picture: deepest sigmoid net, SGD, first seed.
            watch = exp == "vanishing" and opt == "sgd" and depth == deepest and s == 0 and deriv in cfg.sigmoid_derivatives[:2]
            runs.append(train(cfg, data, exp, act, params, deriv, opt, depth, seed, shift, monitor=watch))
            progress(len(runs), total, start, f"{exp} {act} {opt} depth {depth} {deriv}")
    rows = summarize(runs)
    print(format_table(rows))
    result = {
        "config": cfg.__dict__, "seed": args.seed, "torch": torch.__version__,
        "target_accuracy": TARGET_ACCURACY, "seconds": time.time() - start,
        "summary": rows, "runs": [r.__dict__ for r in runs],
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    written = ["results.json"]
    if not args.no_plots:
        written += [os.path.basename(p) for p in figures(rows, runs, cfg, args.out)]
    print(f"\n{time.time() - start:.0f} s; wrote {', '.join(written)} to {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
