"""Saves the TorchScript model that train_scripted.cpp trains in C++.

    python make_model.py artderiv_mlp.pt

A small MLP with artderiv activations: ReLU with the sigmoid(beta=2)
derivative, and LeakyReLU with atan. The model is scripted, so its graph holds
artderiv::activation calls, and a C++ program that links the op library can
run the graph, its forward and its backward.
"""

import sys

import torch
from torch import nn

import artderiv
from artderiv import derivatives as D


def build() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 32),
        artderiv.nn.ReLU(derivative=D.sigmoid(beta=2.0)),
        nn.Linear(32, 32),
        artderiv.nn.LeakyReLU(0.1, derivative=D.atan(alpha=2.0)),
        nn.Linear(32, 1),
    )


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "artderiv_mlp.pt"
    scripted = torch.jit.script(build())
    scripted.save(path)
    print(f"saved {path}")
