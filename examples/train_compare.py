"""Train the same deep MLP with the exact derivative and with artificial ones.

A 2-class task on synthetic data (two noisy concentric rings, 2-D inputs):
  * a sigmoid MLP under plain SGD, where sigma'(x) <= 1/4 per layer shrinks
    the gradient: exact vs exact_plus(c=0.05) (Roodschild et al. 2020)
  * a ReLU MLP whose units start dead (every hidden bias shifted by -1):
    exact (dead units get exactly zero gradient) vs sigmoid (Hu et al. 2021)

Setup of every run: 3 hidden layers of width 32, PyTorch's default Linear
init (plus the bias shift where said), SGD lr 2.0 without momentum, full
batch of 1024 points, 500 steps, seed 0. Prints training loss and accuracy.
One seed of one configuration: it shows the mechanism, not a general claim.

    python examples/train_compare.py
"""

import math
import time

import torch
from torch import nn

import artderiv

DEPTH, WIDTH, STEPS, LR, N = 3, 32, 500, 2.0, 1024


def rings(n: int, generator: torch.Generator):
    """Two concentric noisy rings (radius 1 and 2): a nonlinear 2-class task."""
    label = torch.randint(0, 2, (n,), generator=generator)
    angle = torch.rand(n, generator=generator) * 2 * math.pi
    radius = 1.0 + label.float() + 0.15 * torch.randn(n, generator=generator)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    return x, label


class MLP(nn.Module):
    def __init__(self, act, bias_shift: float = 0.0):
        super().__init__()
        dims = [2] + [WIDTH] * DEPTH
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(WIDTH, 2)
        self.act = act
        with torch.no_grad():
            for layer in self.hidden:
                layer.bias.add_(bias_shift)

    def forward(self, x):
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.out(x)


def train(act, bias_shift: float = 0.0):
    torch.manual_seed(0)
    x, y = rings(N, torch.Generator().manual_seed(1))
    model = MLP(act, bias_shift)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    losses = []
    for _ in range(STEPS):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    return losses, accuracy


RUNS = [
    ("sigmoid", "exact", lambda x: artderiv.sigmoid(x, "exact"), 0.0),
    ("sigmoid", "exact_plus(c=0.05)", lambda x: artderiv.sigmoid(x, "exact_plus"), 0.0),
    ("relu, bias -1", "exact", lambda x: artderiv.relu(x, "exact"), -1.0),
    ("relu, bias -1", "sigmoid(beta=1)", lambda x: artderiv.relu(x, "sigmoid"), -1.0),
]


def main():
    print(f"{DEPTH}-hidden-layer MLP, width {WIDTH}, SGD lr {LR}, {STEPS} full-batch steps on rings")
    print(f"{'activation':<15} {'derivative':<20} {'loss@0':>8} {'loss@250':>9} {'final':>8} {'accuracy':>9}")
    start = time.time()
    for activation, derivative, act, shift in RUNS:
        losses, accuracy = train(act, shift)
        print(
            f"{activation:<15} {derivative:<20} {losses[0]:8.4f} {losses[250]:9.4f} "
            f"{losses[-1]:8.4f} {accuracy:9.1%}"
        )
    print(f"({time.time() - start:.1f} s, CPU kernels: {artderiv.cpu_kernel_isa()})")


if __name__ == "__main__":
    main()
