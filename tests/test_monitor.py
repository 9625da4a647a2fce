"""artderiv.Monitor: reading is repeatable, in-place activations, remove(), types=.

The Monitor's known answers on hand-built networks are in test_demo.py.
"""

import copy
import gc
import weakref

import pytest
import torch
from torch import nn

import artderiv


def _net(act, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), act, nn.Linear(8, 8), copy.deepcopy(act), nn.Linear(8, 1))


def _x():
    return torch.randn(16, 4, generator=torch.Generator().manual_seed(1))


def test_reading_stats_does_not_change_them_or_fire_hooks():
    model = _net(artderiv.nn.ReLU())
    calls = []
    model[1].register_forward_hook(lambda *a: calls.append("forward"))
    model[1].register_full_backward_hook(lambda *a: calls.append("backward"))
    mon = artderiv.Monitor(model)
    model(_x()).sum().backward()
    calls.clear()
    first = mon.stats()
    assert mon.stats() == first and mon.stats() == first
    assert mon.table() == mon.table()
    assert calls == []  # computing the derivative must not look like a forward/backward pass
    # The gradient reaching layer "1" is the one autograd computed, not a probe's ones.
    assert first[0]["grad_norm"] != pytest.approx((16 * 8) ** 0.5)
    mon.remove()


@pytest.mark.parametrize("act", [nn.ReLU, nn.ELU, nn.SiLU, nn.Hardtanh])
def test_inplace_activation_works_and_matches_out_of_place(act):
    results = []
    for inplace in (False, True):
        model = _net(act(inplace=inplace))
        with artderiv.Monitor(model) as mon:
            model(_x()).pow(2).sum().backward()
            rows = mon.stats()
        results.append((rows, [p.grad for p in model.parameters()]))
    (rows, grads), (rows_inplace, grads_inplace) = results
    # Equal up to rounding: ELU's in-place backward computes from its output.
    assert [r["grad_norm"] for r in rows_inplace] == pytest.approx([r["grad_norm"] for r in rows], rel=1e-5)
    # The input is recorded before the in-place forward overwrites it.
    for r, ri in zip(rows, rows_inplace):
        assert ri["zero_fraction"] == r["zero_fraction"]
        assert ri["mean_derivative"] == pytest.approx(r["mean_derivative"], rel=1e-6)
    for g, gi in zip(grads, grads_inplace):
        torch.testing.assert_close(gi, g)


def test_inplace_activation_under_no_grad():
    model = _net(nn.ELU(inplace=True))
    reference = _net(nn.ELU())
    rows = []
    for m in (reference, model):
        with artderiv.Monitor(m) as mon, torch.no_grad():
            m(_x())
            rows.append(mon.stats())
    assert [r["mean_derivative"] for r in rows[1]] == pytest.approx([r["mean_derivative"] for r in rows[0]])
    assert all(r["grad_norm"] is None for r in rows[1])


def test_remove_removes_every_hook_and_drops_inputs():
    model = _net(nn.ReLU())
    mon = artderiv.Monitor(model)
    model(_x()).sum().backward()
    before = mon.stats()
    recorded = [weakref.ref(x) for x in mon._inputs.values()]
    assert recorded
    mon.remove()
    for m in (model[1], model[3]):
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks)
    gc.collect()
    assert all(r() is None for r in recorded)
    # Still usable afterwards; nothing new is recorded and the gradient norms stay.
    model(_x()).sum().backward()
    assert [r["grad_norm"] for r in mon.stats()] == [r["grad_norm"] for r in before]
    assert all("zero_fraction" not in r for r in mon.stats())


@pytest.mark.parametrize("types", [[nn.Tanh], (nn.Tanh,), nn.Tanh, {nn.Tanh}])
def test_types_accepts_a_class_or_any_iterable_of_classes(types):
    model = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 2), nn.ReLU())
    mon = artderiv.Monitor(model, types=types)
    assert list(mon.layers) == ["1"]
    mon.remove()


def test_types_empty_watches_only_artderiv_modules():
    model = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), artderiv.nn.ReLU())
    assert list(artderiv.Monitor(model, types=()).layers) == ["2"]


@pytest.mark.parametrize("types", [5, "Tanh", [nn.Tanh, "ReLU"]])
def test_types_rejects_non_classes(types):
    with pytest.raises(TypeError, match="Monitor: types"):
        artderiv.Monitor(nn.Sequential(nn.Tanh()), types=types)


def test_shared_module_is_listed_once_with_its_last_input():
    act = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 4), act, nn.Linear(4, 4), act)
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    with artderiv.Monitor(model) as mon:
        model(x).sum().backward()
        (row,) = mon.stats()
    first_input = model[0](x)
    last_input = model[2](act(first_input))
    # the two calls' inputs must tell apart, or this could not see which one is kept
    assert (first_input <= 0).float().mean() != (last_input <= 0).float().mean()
    assert row["zero_fraction"] == (last_input <= 0).float().mean().item()


def test_monitor_made_before_convert_reports_the_replacement():
    """convert() moves the hooks to the artderiv module; the Monitor then reads
    the module that ran, with its derivative, not the replaced torch.nn one."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    x = torch.randn(16, 4)
    mon = artderiv.Monitor(model)
    artderiv.convert(model, derivative="atan")
    model(x).sum().backward()
    fresh = artderiv.Monitor(model)
    model(x).sum().backward()
    assert mon.stats() == fresh.stats()
    assert mon.stats()[0]["zero_fraction"] == 0.0  # atan's derivative is nowhere 0, ReLU's is


def test_stats_of_a_pass_under_inference_mode():
    """The recorded input is then an inference tensor; the derivative probe
    works on a copy of it."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), artderiv.nn.ReLU(), nn.Linear(8, 1))
    mon = artderiv.Monitor(model)
    x = torch.randn(16, 4)
    with torch.inference_mode():
        model(x)
    (row,) = mon.stats()
    h = model[0](x).detach()
    assert row["mean_derivative"] == pytest.approx(torch.sigmoid(h).mean().item())
