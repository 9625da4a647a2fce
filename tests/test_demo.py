"""The main job (artderiv demo) and artderiv.Monitor.

The effect tests use small fixed configurations (seeded, deterministic) and
state their margins; they were measured once and are not tuned per run.
"""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import artderiv
from artderiv import demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return demo.load_data(0)


def test_demo_quick_writes_well_formed_outputs(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "artderiv", "demo", "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "vanishing gradients" in proc.stdout and "dying ReLU" in proc.stdout and "zero derivatives" in proc.stdout
    result = json.loads((out / "results.json").read_text())
    cfg = demo.CONFIGS["quick"]
    assert result["config"]["name"] == "quick"
    assert len(result["runs"]) == len(demo.plan(cfg)) * cfg.seeds
    for row in result["summary"]:
        assert 0.0 <= row["accuracy_mean"] <= 1.0 and row["seeds"] == cfg.seeds
        assert row["optimizer"] in ("sgd", "adam")
        if row["experiment"] == "dying_relu":
            assert 0.0 <= row["dead_final"] <= 1.0 and len(row["dead_curve"]) == cfg.epochs
    for name in ("accuracy_vs_depth.png", "grad_norms.png", "dead_units.png", "derivatives.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name


def test_demo_is_deterministic(digits):
    cfg = dataclasses.replace(demo.CONFIGS["quick"], epochs=2)
    a = demo.train(cfg, digits, "vanishing", "sigmoid", [], "exact_plus(c=0.05)", "sgd", 2, seed=3)
    b = demo.train(cfg, digits, "vanishing", "sigmoid", [], "exact_plus(c=0.05)", "sgd", 2, seed=3)
    assert a.test_accuracy == b.test_accuracy and a.final_loss == b.final_loss


def _first_layer_grad(model, x, y):
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    return model.linears[0].weight.grad


def test_step_network_exact_gives_zero_hidden_gradient_and_atan_trains(digits):
    """Step hidden layers: with `exact` the hidden weights get exactly zero
    gradient (only the readout learns); with `atan` they learn. Measured margin
    at this configuration: ~27 accuracy points (61% vs 88%); asserted: 10."""
    (xtr, ytr), _ = digits
    torch.manual_seed(0)
    exact = demo.MLP("step", [], "exact", depth=2, width=64)
    atan = demo.MLP("step", [], artderiv.derivatives.atan(alpha=2.0), depth=2, width=64)
    atan.load_state_dict(exact.state_dict())
    assert torch.count_nonzero(_first_layer_grad(exact, xtr[:256], ytr[:256])) == 0
    assert torch.count_nonzero(_first_layer_grad(atan, xtr[:256], ytr[:256])) > 0

    cfg = dataclasses.replace(demo.CONFIGS["quick"], epochs=6)
    acc = {d: demo.train(cfg, digits, "zero_derivative", "step", [], d, "sgd", 2, seed=0).test_accuracy
           for d in ("exact", "atan(alpha=2)")}
    assert acc["atan(alpha=2)"] >= acc["exact"] + 0.10, acc


def test_deep_sigmoid_sgd_trains_better_with_artificial_derivative(digits):
    """3 hidden sigmoid layers, plain SGD lr 1.0, 30 epochs, seed 0. Measured:
    exact 69.7%, exact_plus(c=0.05) 86.4%, like('tanh') 96.7%; asserted margins
    5 and 15 points. Deeper sigmoid nets (5+) did not train with any shape at
    this budget (see docs/results.md)."""
    cfg = dataclasses.replace(demo.CONFIGS["default"], epochs=30)
    acc = {d: demo.train(cfg, digits, "vanishing", "sigmoid", [], d, "sgd", 3, seed=0).test_accuracy
           for d in ("exact", "exact_plus(c=0.05)", "like('tanh')")}
    assert acc["exact_plus(c=0.05)"] >= acc["exact"] + 0.05, acc
    assert acc["like('tanh')"] >= acc["exact"] + 0.15, acc


# ---------------------------------------------------------------------------
# Monitor on hand-built networks whose answers are known
# ---------------------------------------------------------------------------


def _fixed_linear(weight, bias):
    lin = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(weight))
        lin.bias.copy_(torch.tensor(bias))
    return lin


def test_monitor_counts_dead_relus_and_gradient_norm():
    # Pre-activations: x @ W.T + b with W = I, b = 0: the inputs themselves.
    model = nn.Sequential(_fixed_linear([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]), nn.ReLU(),
                          _fixed_linear([[2.0, 3.0]], [0.0]))
    x = torch.tensor([[1.0, -1.0], [-2.0, 3.0], [-1.0, -1.0], [4.0, 5.0]])  # 4 of 8 negative
    with artderiv.Monitor(model) as mon:
        model(x).sum().backward()
        (row,) = mon.stats()
    assert row["type"] == "ReLU" and row["zero_fraction"] == 0.5
    # dL/d(relu output) = readout weights per row: [2, 3] for each of 4 rows.
    assert row["grad_norm"] == pytest.approx(torch.tensor([2.0, 3.0]).norm().item() * 2)
    assert "ReLU" in mon.table()


def test_monitor_sees_the_artificial_derivative():
    model = nn.Sequential(_fixed_linear([[1.0]], [0.0]), artderiv.nn.ReLU(derivative="sigmoid"))
    x = torch.tensor([[-3.0], [-1.0], [2.0]])
    mon = artderiv.Monitor(model)
    model(x).sum().backward()
    (row,) = mon.stats()
    mon.remove()
    assert row["zero_fraction"] == 0.0  # sigma(x) is never 0
    assert row["mean_derivative"] == pytest.approx(torch.sigmoid(x).mean().item(), rel=1e-6)
    assert row["derivative"] == "sigmoid(beta=1)"
    assert row["grad_norm"] == pytest.approx(3 ** 0.5)


def test_monitor_saturated_sigmoid_is_zero_derivative():
    model = nn.Sequential(_fixed_linear([[1.0]], [0.0]), nn.Sigmoid())
    x = torch.tensor([[-40.0], [40.0], [0.0], [50.0]])
    mon = artderiv.Monitor(model, tol=1e-6)
    model(x).sum().backward()
    assert mon.stats()[0]["zero_fraction"] == 0.75
    mon.remove()
    assert not mon._handles


def test_monitor_requires_activations():
    with pytest.raises(ValueError, match="no activation modules"):
        artderiv.Monitor(nn.Linear(2, 2))


def test_example_train_compare_shows_the_rescue():
    """examples/train_compare.py runs and shows what its docstring says (one
    seed, measured once: exact 52% on both nets, exact_plus 97%, sigmoid 100%):
    the exact derivative stays near chance, the artificial ones learn."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_compare.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # this checkout's artderiv
    assert proc.returncode == 0, proc.stderr[-3000:]
    accuracy = {}
    for line in proc.stdout.splitlines():
        if line.endswith("%") and ("sigmoid" in line or "relu" in line):
            net = "relu" if line.startswith("relu") else "sigmoid"
            derivative = line[15:36].strip()
            accuracy[(net, derivative)] = float(line.split()[-1].rstrip("%"))
    assert sorted(accuracy) == [("relu", "exact"), ("relu", "sigmoid(beta=1)"),
                                ("sigmoid", "exact"), ("sigmoid", "exact_plus(c=0.05)")], proc.stdout
    assert accuracy[("sigmoid", "exact")] < 65 and accuracy[("relu", "exact")] < 65, proc.stdout
    assert accuracy[("sigmoid", "exact_plus(c=0.05)")] > 90 and accuracy[("relu", "sigmoid(beta=1)")] > 90, proc.stdout
