"""Tensor hyperparameters and torch.optim's full keyword set follow torch.optim's own rules (the peer throughout).

On a device whose default path is foreach (CUDA), torch.optim.Adam runs a Tensor lr on the single-tensor loop;
the default is simulated on CPU by patching ``_default_to_fused_or_foreach`` where each module looks it up.
"""

from __future__ import annotations

import importlib

import pytest
import torch

import weightdecay


def _foreach_default(params, differentiable, use_fused=False):
    return False, True  # what torch picks for CUDA tensors


@pytest.fixture
def cuda_like_default(monkeypatch):
    for name in ("torch.optim.adam", "torch.optim.sgd", "weightdecay.optim.adamw", "weightdecay.optim.sgdw"):
        module = importlib.import_module(name)  # torch.optim hides its submodules behind same-named functions
        monkeypatch.setattr(module, "_default_to_fused_or_foreach", _foreach_default)


def _train(opt, params, steps=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    return [p.detach().clone() for p in params]


def _params(seed=3):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, generator=gen).requires_grad_(), torch.randn(6, generator=gen).requires_grad_()]


@pytest.mark.parametrize("kwargs", [
    dict(lr=torch.tensor(1e-2)),
    dict(lr=torch.tensor(1e-2), betas=(torch.tensor(0.8), torch.tensor(0.99))),
    dict(lr=torch.tensor(1e-2), fused=True),
    dict(lr=torch.tensor(1e-2), betas=(torch.tensor(0.8), torch.tensor(0.99)), fused=True),
], ids=["lr", "lr-betas", "lr-fused", "lr-betas-fused"])
def test_tensor_hyperparameters_on_a_foreach_default_device_match_torch(cuda_like_default, kwargs):
    ours, theirs = _params(), _params()
    got = _train(weightdecay.AdamW(ours, weight_decay=0.1, **kwargs), ours)
    want = _train(torch.optim.AdamW(theirs, weight_decay=0.1, **kwargs), theirs)
    for a, b in zip(got, want):
        # Bit for bit, except that a float32 Tensor β rounds differently from the float64 β the loop uses.
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_tensor_lr_sgdw_on_a_foreach_default_device_matches_torch(cuda_like_default):
    ours, theirs = _params(), _params()
    got = _train(weightdecay.SGDW(ours, lr=torch.tensor(0.05), momentum=0.9, weight_decay=0.01, decay="l2"), ours)
    want = _train(torch.optim.SGD(theirs, lr=torch.tensor(0.05), momentum=0.9, weight_decay=0.01), theirs)
    for a, b in zip(got, want):
        assert torch.equal(a, b)


# torch.optim.AdamW refuses each of these at construction with a ValueError; so must weightdecay.AdamW, with the
# same key words (before: built, then failed inside the first step, or a RuntimeError from .item()).
CONSTRUCTION_REFUSALS = [
    (dict(lr=torch.tensor(1e-3), foreach=True), r"lr as a Tensor is not supported for capturable=False and foreach"),
    (dict(betas=(torch.tensor(0.9), torch.tensor(0.99)), foreach=True), r"betas.*Tensor.*not supported.*foreach"),
    (dict(betas=(0.9, torch.tensor(0.99))), r"betas must be either both floats or both Tensors"),
    (dict(lr=torch.tensor([1e-3, 1e-3])), r"Tensor lr must be 1-element"),
]


@pytest.mark.parametrize("kwargs, error_regex", CONSTRUCTION_REFUSALS,
                         ids=["lr-foreach", "betas-foreach", "betas-mixed", "lr-2-elements"])
def test_tensor_hyperparameters_refused_at_construction_as_torch_does(kwargs, error_regex):
    with pytest.raises(ValueError):
        torch.optim.AdamW([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match=error_regex):
        weightdecay.AdamW([torch.zeros(2, requires_grad=True)], **kwargs)


ADAMW_FULL = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05, amsgrad=False, foreach=None,
                  maximize=False, capturable=False, differentiable=False, fused=None)
SGD_FULL = dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=False, maximize=False,
                foreach=None, differentiable=False, fused=None)


def test_torchs_full_keyword_set_is_accepted():
    # Code that forwards every keyword torch.optim takes, defaults included, gets torch's own numbers.
    ours, theirs = _params(), _params()
    got = _train(weightdecay.AdamW(ours, **ADAMW_FULL), ours)
    want = _train(torch.optim.AdamW(theirs, **ADAMW_FULL), theirs)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    ours, theirs = _params(), _params()
    got = _train(weightdecay.SGDW(ours, decay="l2", **SGD_FULL), ours)
    want = _train(torch.optim.SGD(theirs, **SGD_FULL), theirs)
    assert all(torch.equal(a, b) for a, b in zip(got, want))


@pytest.mark.parametrize("cls, kwargs, reason", [
    (weightdecay.AdamW, dict(capturable=True), r"capturable=True is not supported: .*host"),
    (weightdecay.AdamW, dict(differentiable=True), r"differentiable=True is not supported: .*in place"),
    (weightdecay.SGDW, dict(differentiable=True), r"differentiable=True is not supported"),
])
def test_capturable_and_differentiable_true_are_refused_with_the_reason(cls, kwargs, reason):
    with pytest.raises(ValueError, match=reason):
        cls([torch.zeros(2, requires_grad=True)], **kwargs)
