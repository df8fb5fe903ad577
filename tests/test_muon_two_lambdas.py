"""Muon's two λs: the matrices Muon updates and the tensors AdamW updates, each with its own weight decay and
convention (Keras' ``weight_decay`` / ``adam_weight_decay``), checked against torch.optim.Muon beside
torch.optim.AdamW and against the shrink formula; convert and transfer keep the two apart."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightdecay
from weightdecay.cli import main
from weightdecay.errors import UserError
from weightdecay.rules import convert, convert_all, transfer, transfer_muon


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 3))


def test_two_lambdas_match_torch_muon_beside_torch_adamw():
    """torch mode in both parts is torch.optim.Muon(weight_decay=λ_muon) on the matrices and
    torch.optim.AdamW(weight_decay=λ_adamw) on the decayed rest (here the head, sent to AdamW), step for step."""
    model, twin = _model(), _model()
    muon_groups, adamw_groups = weightdecay.muon_param_groups(model, 0.3, adamw_names=("3",), adamw_weight_decay=0.05)
    opt = weightdecay.muon_with_adamw(muon_groups, adamw_groups, lr=0.02, weight_decay=0.3, adamw_lr=1e-2)
    assert [g["weight_decay"] for g in muon_groups] == [0.3]
    assert [g["weight_decay"] for g in adamw_groups] == [0.05, 0.0]
    exempt = [twin[0].bias, twin[2].weight, twin[2].bias, twin[3].bias]
    reference = [torch.optim.Muon([twin[0].weight], lr=0.02, weight_decay=0.3),
                 torch.optim.AdamW([{"params": [twin[3].weight], "weight_decay": 0.05},
                                    {"params": exempt, "weight_decay": 0.0}], lr=1e-2)]
    x = torch.randn(16, 6)
    for _ in range(3):
        for m, opts in ((model, [opt]), (twin, reference)):
            for o in opts:
                o.zero_grad()
            m(x).square().mean().backward()
            for o in opts:
                o.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)


def test_each_part_in_its_own_convention():
    """Zero gradients leave the shrink alone: Muon's matrix by paper's ``η_t·λ_muon``, AdamW's by torch's
    ``lr_t·λ_adamw``, after a scheduler halved both lrs."""
    model = _model()
    muon_groups, adamw_groups = weightdecay.muon_param_groups(model, 1e-3, adamw_names=("3",), adamw_weight_decay=0.05)
    opt = weightdecay.muon_with_adamw(muon_groups, adamw_groups, lr=0.02, weight_decay=1e-3, decay="paper",
                                      adamw_lr=1e-2, adamw_decay="torch")
    assert sorted(g["decay"] for g in opt.param_groups) == ["paper", "torch", "torch"]
    for g in opt.param_groups:
        g["lr"] = g["lr"] / 2
    before = {id(p): p.detach().clone() for p in model.parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    torch.testing.assert_close(model[0].weight.detach(), before[id(model[0].weight)] * (1 - 0.5 * 1e-3))
    torch.testing.assert_close(model[3].weight.detach(), before[id(model[3].weight)] * (1 - 0.5e-2 * 0.05))


def test_convert_keeps_the_two_parts_apart():
    assert convert(0.1, "keras-muon", "torch-muon", lr=0.02).weight_decay == pytest.approx(0.1)
    assert convert(0.1, "keras-muon-adamw", "paper", lr=1e-3).weight_decay == pytest.approx(1e-4)
    with pytest.raises(UserError, match="two λs"):
        convert(0.1, "keras-muon", "keras-muon-adamw", lr=0.02)
    rows, skipped = convert_all(0.1, "keras-muon-adamw", lr=1e-3)
    assert {"torch-muon", "keras-muon", "weightdecay-muon"} <= set(skipped)
    assert {r.target for r in rows} >= {"torch-muon-adamw", "moonlight", "paper"}
    assert next(r for r in rows if r.target == "torch-muon-adamw").part == "adamw"


def test_transfer_carries_each_lambda_at_its_own_lr(capsys):
    parts = transfer_muon(0.1, 0.01, lr=(0.02, 0.04), adamw_lr=(1e-3, 5e-4), convention="keras-muon",
                          adamw_convention="keras-muon-adamw", batch_size=(64, 128), rule="keep-tau-epoch")
    assert parts["muon"] == transfer(0.1, lr=(0.02, 0.04), convention="keras-muon", batch_size=(64, 128),
                                     rule="keep-tau-epoch")
    assert parts["adamw"].weight_decay == pytest.approx(0.01 * 2 * 2)  # lr halved, batch doubled: lr·λ·2
    with pytest.raises(UserError, match="adamw part"):
        transfer_muon(0.1, 0.01, lr=0.02, adamw_lr=1e-3, convention="keras-muon-adamw")
    assert main(["transfer", "--weight-decay", "0.1", "--lr", "0.02", "0.04", "--adamw-weight-decay", "0.01",
                 "--adamw-lr", "1e-3", "--convention", "keras-muon", "--adamw-convention", "keras-muon-adamw"]) == 0
    out = capsys.readouterr().out
    assert "muon   lr    0.02 -> 0.04; weight_decay 0.1 -> 0.05" in out and "weight_decay 0.01 -> 0.01" in out
    assert main(["transfer", "--weight-decay", "0.1", "--lr", "0.02", "--adamw-weight-decay", "0.01"]) == 2
