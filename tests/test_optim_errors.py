"""Bad constructor input, table-driven (after torch's ErrorOptimizerInput): each case names the argument it breaks
and a regex on the key words of the message (the argument and the bad value, or the valid choices)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
import torch

import weightdecay
from weightdecay.decay import MODE_NAMES
from optimizer_cases import NATIVE, SGDW


@dataclass(frozen=True)
class ErrorOptimizerInput:
    """Constructor kwargs that must raise ValueError, a regex its message must match, and a description."""

    kwargs: dict
    error_regex: str
    desc: str
    groups: list = field(default_factory=list)  # per-group overrides, to check group-level validation too


ALL_MODES = ".*".join(MODE_NAMES)  # the message lists every valid mode, in the table's order

ADAMW_ERRORS = [
    ErrorOptimizerInput({"lr": -1.0}, r"(?i)learning rate.*-1\.0", "negative lr"),
    ErrorOptimizerInput({"weight_decay": -0.1}, r"weight_decay.*-0\.1", "negative weight_decay"),
    ErrorOptimizerInput({"betas": (1.2, 0.999)}, r"(?i)beta.*index 0.*1\.2", "beta1 above 1"),
    ErrorOptimizerInput({"betas": (-0.1, 0.999)}, r"(?i)beta.*index 0.*-0\.1", "beta1 negative"),
    ErrorOptimizerInput({"betas": (0.9, 1.0)}, r"(?i)beta.*index 1.*1\.0", "beta2 equal to 1"),
    ErrorOptimizerInput({"eps": -1e-8}, r"(?i)epsilon.*-1e-08", "negative eps"),
    ErrorOptimizerInput({"decay": "foo"}, rf"(?i)decay mode.*'foo'.*{ALL_MODES}", "unknown decay mode"),
    ErrorOptimizerInput({"decay": "L2"}, rf"(?i)decay mode.*'L2'.*{ALL_MODES}", "decay mode is case-sensitive"),
    ErrorOptimizerInput({"peak_lr": 0.0}, r"(?i)peak_lr.*0\.0", "zero peak_lr"),
    ErrorOptimizerInput({"peak_lr": -1e-3}, r"(?i)peak_lr.*-0\.001", "negative peak_lr"),
    ErrorOptimizerInput({"lr": 0.0, "decay": "corrected"}, r"(?i)peak_lr.*0\.0", "lr 0 leaves paper/corrected no peak"),
    ErrorOptimizerInput({}, rf"(?i)decay mode.*'bogus'.*{ALL_MODES}", "unknown mode in a group",
                        [{"decay": "bogus"}]),
    ErrorOptimizerInput({}, r"(?i)peak_lr.*-2", "bad peak_lr in a group", [{"peak_lr": -2.0}]),
]

SGDW_ERRORS = [
    ErrorOptimizerInput({"lr": -0.5}, r"(?i)learning rate.*-0\.5", "negative lr"),
    ErrorOptimizerInput({"weight_decay": -1.0}, r"weight_decay.*-1\.0", "negative weight_decay"),
    ErrorOptimizerInput({"momentum": -0.9}, r"(?i)momentum.*-0\.9", "negative momentum"),
    ErrorOptimizerInput({"decay": "stable"}, r"(?i)decay mode.*SGDW.*'stable'.*torch.*paper.*constant.*corrected.*l2",
                        "stable on SGDW"),
    ErrorOptimizerInput({"decay": "foo"}, rf"(?i)decay mode.*'foo'", "unknown decay mode"),
    ErrorOptimizerInput({"peak_lr": 0.0}, r"(?i)peak_lr.*0\.0", "zero peak_lr"),
    ErrorOptimizerInput({"nesterov": True}, r"(?i)nesterov.*momentum", "nesterov without momentum"),
    ErrorOptimizerInput({"nesterov": True, "momentum": 0.9, "dampening": 0.1}, r"(?i)nesterov.*dampening",
                        "nesterov with dampening"),
    ErrorOptimizerInput({}, r"(?i)decay mode.*SGDW.*'stable'", "stable in a group", [{"decay": "stable"}]),
]


def _construct(cls, case: ErrorOptimizerInput):
    params = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    if case.groups:
        groups = [{"params": [params[0]], **case.groups[0]}, {"params": [params[1]]}]
        return cls(groups, **case.kwargs)
    return cls(params, **case.kwargs)


@pytest.mark.parametrize("case", ADAMW_ERRORS, ids=lambda c: c.desc)
def test_adamw_rejects(case):
    with pytest.raises(ValueError, match=case.error_regex):
        _construct(weightdecay.AdamW, case)


@pytest.mark.parametrize("case", SGDW_ERRORS, ids=lambda c: c.desc)
def test_sgdw_rejects(case):
    with pytest.raises(ValueError, match=case.error_regex):
        _construct(weightdecay.SGDW, case)


@pytest.mark.parametrize("cls", [case.cls for case in NATIVE])
def test_group_added_later_is_validated(cls):
    opt = cls([torch.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=r"(?i)decay mode.*'nope'"):
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)], "decay": "nope"})


@pytest.mark.parametrize("cls, kwargs", [
    (weightdecay.AdamW, {"betas": (0.0, 0.0), "eps": 0.0, "weight_decay": 0.0, "lr": 0.0}),
    (weightdecay.SGDW, {"momentum": 0.0, "lr": 0.0, "weight_decay": 0.0}),
    (weightdecay.AdamW, {"lr": 0.0, "decay": "paper", "peak_lr": 1e-3}),
])
def test_boundary_values_are_accepted(cls, kwargs):
    # The ranges are closed where torch's are: lr = 0, eps = 0, β = 0, λ = 0 all build (only peak_lr must be > 0).
    opt = cls([torch.zeros(2, requires_grad=True)], **kwargs)
    assert opt.param_groups[0]["lr"] == 0.0


def test_every_listed_mode_is_accepted():
    # The modes the error message lists are exactly the ones the constructor takes.
    for mode in MODE_NAMES:
        weightdecay.AdamW([torch.zeros(1, requires_grad=True)], decay=mode)
        if mode in SGDW.modes:
            weightdecay.SGDW([torch.zeros(1, requires_grad=True)], decay=mode)
    with pytest.raises(ValueError) as info:
        weightdecay.AdamW([torch.zeros(1, requires_grad=True)], decay="nope")
    listed = re.findall(r"\b(" + "|".join(MODE_NAMES) + r")\b", str(info.value))
    assert set(listed) == set(MODE_NAMES)


@pytest.mark.parametrize("case", NATIVE, ids=lambda c: c.name)
def test_the_optimizer_table_lists_every_mode_the_class_takes(case):
    # The generic tests iterate tests/optimizer_cases.py: a mode the class gained but its row lacks would go untested.
    taken = []
    for mode in MODE_NAMES:
        try:
            case.cls([torch.zeros(1, requires_grad=True)], decay=mode)
        except ValueError:
            continue
        taken.append(mode)
    assert tuple(taken) == case.modes


# Wrong types, refused at construction and naming the argument (torch.optim refuses the numeric ones at
# construction too, with a bare comparison error; before, weightdecay built the optimizer and failed in a step).
TYPE_ERRORS = [
    (weightdecay.AdamW, {"weight_decay": "0.1"}, r"weight_decay.*'0\.1'.*str", True),
    (weightdecay.AdamW, {"lr": "1e-3"}, r"lr.*'1e-3'.*str", True),
    (weightdecay.AdamW, {"betas": (0.9, "x")}, r"betas\[1\].*'x'", True),
    (weightdecay.AdamW, {"eps": "1e-8"}, r"eps.*'1e-08'|eps.*'1e-8'", True),
    (weightdecay.AdamW, {"peak_lr": "1e-2"}, r"peak_lr.*'1e-2'", None),
    (weightdecay.AdamW, {"weight_decay": torch.tensor(0.1)}, r"weight_decay.*Tensor", None),
    (weightdecay.AdamW, {"amsgrad": "yes"}, r"amsgrad.*'yes'", None),
    (weightdecay.AdamW, {"lr": True}, r"lr.*True.*bool", None),
    (weightdecay.SGDW, {"lr": "0.1"}, r"lr.*'0\.1'", True),
    (weightdecay.SGDW, {"momentum": "0.9"}, r"momentum.*'0\.9'", True),
    (weightdecay.SGDW, {"weight_decay": [0.1]}, r"weight_decay.*list", True),
    (weightdecay.SGDW, {"nesterov": 1}, r"nesterov.*1.*int", None),
    (weightdecay.SGDW, {"foreach": "no"}, r"foreach.*'no'", None),
]
TORCH_TWIN = {case.cls: case.base for case in NATIVE}


@pytest.mark.parametrize("cls, kwargs, error_regex, torch_refuses", TYPE_ERRORS,
                         ids=[f"{c.__name__}-{next(iter(k))}" for c, k, _, _ in TYPE_ERRORS])
def test_wrong_types_are_refused_at_construction(cls, kwargs, error_regex, torch_refuses):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match=error_regex):
        cls([p], **kwargs)
    if torch_refuses:  # the peer refuses it at construction as well (with a less specific message)
        with pytest.raises((TypeError, ValueError)):
            TORCH_TWIN[cls]([torch.zeros(2, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("cls", [case.cls for case in NATIVE])
@pytest.mark.parametrize("device, dtype", [("meta", torch.float32), ("cpu", torch.int64)])
def test_fused_runs_torchs_device_dtype_check(cls, device, dtype):
    def first_step(opt_cls, p):
        p.grad = torch.zeros_like(p)
        opt_cls([p], fused=True).step()

    with pytest.raises(RuntimeError) as torch_error:
        first_step(TORCH_TWIN[cls], torch.zeros(3, device=device, dtype=dtype))
    with pytest.raises(RuntimeError) as ours:
        first_step(cls, torch.zeros(3, device=device, dtype=dtype))
    assert str(ours.value) == str(torch_error.value)
