"""What λ means across a resume, and torch.optim.Adam's twin (peers: torch.optim.SGD, Adam and AdamW themselves).

A torch.optim.SGD or torch.optim.Adam state dict carries a coupled L2 ``weight_decay`` and no ``decay`` key;
loaded into an optimizer whose mode is decoupled, the same λ silently did something else (|Δp| ≈ 0.03 after ten
steps against torch continuing). Now it warns and names the ``decay=`` that keeps the meaning, and with that
``decay=`` the run continues exactly as torch's would.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import weightdecay

STEPS = 10


def _params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(5, 4, generator=gen).requires_grad_(), torch.randn(4, generator=gen).requires_grad_()]


def _run(opt, params, start, steps=STEPS):
    for t in range(start, start + steps):
        gen = torch.Generator().manual_seed(100 + t)
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()


def _resume(peer_cls, peer_kw, ours_cls, ours_kw):
    """Train torch's optimizer, load its state into ours and into a second torch one, continue both."""
    source = _params()
    peer = peer_cls(source, **peer_kw)
    _run(peer, source, 0)
    saved = peer.state_dict()
    theirs, ours = [p.detach().clone().requires_grad_() for p in source], [p.detach().clone().requires_grad_()
                                                                          for p in source]
    twin = peer_cls(theirs, **peer_kw)
    twin.load_state_dict(copy.deepcopy(saved))  # torch's load aliases the saved tensors: one copy each
    opt = ours_cls(ours, **ours_kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opt.load_state_dict(copy.deepcopy(saved))
    _run(twin, theirs, STEPS)
    _run(opt, ours, STEPS)
    gap = max((a - b).abs().max().item() for a, b in zip(ours, theirs))
    return [str(w.message) for w in caught if "decay" in str(w.message)], gap


SGD = dict(lr=0.1, momentum=0.9, weight_decay=0.1)
ADAM = dict(lr=1e-2, weight_decay=0.1)

CHANGED = [
    pytest.param(torch.optim.SGD, SGD, weightdecay.SGDW, dict(lr=0.1, momentum=0.9), "'l2'", id="SGD-into-SGDW"),
    pytest.param(torch.optim.Adam, ADAM, weightdecay.AdamW, dict(lr=1e-2), "'l2'", id="Adam-into-AdamW"),
    pytest.param(torch.optim.AdamW, ADAM, weightdecay.AdamW, dict(lr=1e-2, decay="paper"), "'torch'",
                 id="AdamW-into-paper"),
]


@pytest.mark.parametrize("peer_cls, peer_kw, ours_cls, ours_kw, keeps", CHANGED)
def test_a_torch_state_dict_whose_lambda_changes_meaning_warns(peer_cls, peer_kw, ours_cls, ours_kw, keeps):
    messages, gap = _resume(peer_cls, peer_kw, ours_cls, ours_kw)
    assert len(messages) == 1, messages
    assert f"decay={keeps}" in messages[0] and "param_groups[0]" in messages[0]
    assert gap > 1e-3  # and indeed the run no longer continues torch's


KEPT = [
    pytest.param(torch.optim.SGD, SGD, weightdecay.SGDW, dict(lr=0.1, momentum=0.9, decay="l2"), id="SGD-l2"),
    pytest.param(torch.optim.Adam, ADAM, weightdecay.AdamW, dict(lr=1e-2, decay="l2"), id="Adam-l2"),
    pytest.param(torch.optim.Adam, ADAM, weightdecay.Adam, dict(lr=1e-2), id="Adam-alias"),
    pytest.param(torch.optim.AdamW, ADAM, weightdecay.AdamW, dict(lr=1e-2), id="AdamW-torch"),
    pytest.param(torch.optim.SGD, dict(lr=0.1, momentum=0.9), weightdecay.SGDW, dict(lr=0.1, momentum=0.9),
                 id="SGD-without-decay"),
]


@pytest.mark.parametrize("peer_cls, peer_kw, ours_cls, ours_kw", KEPT)
def test_the_named_decay_continues_torchs_run_exactly_and_silently(peer_cls, peer_kw, ours_cls, ours_kw):
    messages, gap = _resume(peer_cls, peer_kw, ours_cls, ours_kw)
    assert messages == []
    assert gap == 0.0


def test_torch_adamw_runs_a_paper_state_dict_in_torch_mode():
    # Documented in load_state_dict: torch.optim.AdamW ignores `decay` and keeps λ, i.e. it continues in torch mode.
    source = _params()
    paper = weightdecay.AdamW(source, lr=1e-2, weight_decay=0.5, decay="paper", peak_lr=0.1)
    _run(paper, source, 0)
    saved = paper.state_dict()
    in_torch, in_ours = ([p.detach().clone().requires_grad_() for p in source] for _ in range(2))
    peer = torch.optim.AdamW(in_torch, lr=1e-2, weight_decay=0.0)
    peer.load_state_dict(copy.deepcopy(saved))
    assert peer.param_groups[0]["weight_decay"] == 0.5
    ours_torch_mode = weightdecay.AdamW(in_ours, lr=1e-2)
    saved = copy.deepcopy(saved)
    ours_torch_mode.load_state_dict({**saved, "param_groups": [{**g, "decay": "torch"} for g in saved["param_groups"]]})
    _run(peer, in_torch, STEPS)
    _run(ours_torch_mode, in_ours, STEPS)
    for a, b in zip(in_torch, in_ours):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs", [{}, dict(weight_decay=0.1), dict(weight_decay=0.1, amsgrad=True, lr=3e-3)])
def test_adam_alias_is_torch_adam_with_its_defaults(kwargs):
    ours, theirs = _params(), _params()
    opt = weightdecay.Adam(ours, **kwargs)
    assert opt.param_groups[0]["decay"] == "l2" and opt.param_groups[0]["weight_decay"] == kwargs.get("weight_decay", 0)
    _run(opt, ours, 0)
    _run(torch.optim.Adam(theirs, **kwargs), theirs, 0)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
