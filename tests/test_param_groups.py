"""weightdecay.param_groups: which parameters are decayed, decided by structure (ndim, module type) and the model's
own ``no_weight_decay()``, checked against an independent walk of the model and against an optimizer step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightdecay

NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase)


class TinyViT(nn.Module):
    """A model with every kind of parameter: 2-D weights, biases, norms (one with a 2-D scale), embeddings,
    a position embedding the model exempts by name, a tied head and a frozen tensor."""

    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(11, 8)
        self.pos_embed = nn.Parameter(torch.randn(1, 5, 8))
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8))
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.blocks = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8, bias=False), nn.GroupNorm(2, 8))
        self.plane_norm = nn.LayerNorm((5, 8))  # elementwise affine over 2-D: weight.ndim == 2, exempt by type
        self.rms = nn.RMSNorm(8)
        self.head = nn.Linear(8, 11, bias=False)
        self.head.weight = self.tok.weight  # tied to the embedding
        self.frozen = nn.Parameter(torch.randn(4, 4), requires_grad=False)
        self.gate = nn.Parameter(torch.randn(8, 8))

    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}


def _expected_exempt(model, *, names=(), exempt_embeddings=True):
    """Independent of the code under test: walk modules, collect every trainable tensor that is exempt."""
    names = set(names) | set(getattr(model, "no_weight_decay", lambda: ())())
    exempt = set()
    for module_name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            full = f"{module_name}.{pname}" if module_name else pname
            if (p.ndim <= 1 or isinstance(module, NORM_TYPES)
                    or (exempt_embeddings and isinstance(module, (nn.Embedding, nn.EmbeddingBag)))
                    or any(full == n or full.startswith(n + ".") for n in names)):
                exempt.add(id(p))
    return exempt


def _ids(group):
    return [id(p) for p in group["params"]]


def _check_split(model, groups, weight_decay, exempt):
    assert isinstance(groups, list) and len(groups) == 2
    decayed, kept = groups
    assert decayed["weight_decay"] == weight_decay and kept["weight_decay"] == 0.0
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert len(_ids(decayed)) == len(set(_ids(decayed))) and len(_ids(kept)) == len(set(_ids(kept)))
    assert set(_ids(decayed)) | set(_ids(kept)) == trainable  # every trainable tensor once; frozen ones left out
    assert not set(_ids(decayed)) & set(_ids(kept))
    assert set(_ids(kept)) == exempt & trainable


def test_default_split_by_structure_and_model_names():
    model = TinyViT()
    groups = weightdecay.param_groups(model, 0.1)
    _check_split(model, groups, 0.1, _expected_exempt(model))
    decayed = set(_ids(groups[0]))
    assert {id(model.conv.weight), id(model.blocks[0].weight), id(model.blocks[2].weight), id(model.gate)} == decayed
    assert id(model.plane_norm.weight) not in decayed and id(model.pos_embed) not in decayed


def test_embeddings_decayed_on_request_and_extra_names_exempt():
    model = TinyViT()
    groups = weightdecay.param_groups(model, 0.05, no_decay_names=("gate", "blocks.0"), exempt_embeddings=False)
    _check_split(model, groups, 0.05, _expected_exempt(model, names=("gate", "blocks.0"), exempt_embeddings=False))
    decayed = set(_ids(groups[0]))
    assert id(model.tok.weight) in decayed  # the tied embedding/head tensor, once
    assert id(model.gate) not in decayed and id(model.blocks[0].weight) not in decayed  # prefix "blocks.0" matches
    assert id(model.blocks[2].weight) in decayed  # ... but not "blocks.2"


def test_model_without_no_weight_decay():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    groups = weightdecay.param_groups(model, 0.3)
    _check_split(model, groups, 0.3, _expected_exempt(model))
    assert _ids(groups[0]) == [id(model[0].weight), id(model[2].weight)]


@pytest.mark.parametrize("mode", ["torch", "paper"])
def test_groups_drive_an_optimizer(mode):
    # One step with zero gradients: decayed tensors shrink by exactly (1 - s), exempt ones do not move.
    model = TinyViT()
    before = {id(p): p.detach().clone() for p in model.parameters()}
    lr, lam = 0.01, 0.5
    groups = weightdecay.param_groups(model, lam, decay=mode)
    assert all(g["decay"] == mode for g in groups)
    opt = weightdecay.AdamW(groups, lr=lr)
    for p in model.parameters():
        p.grad = torch.zeros_like(p) if p.requires_grad else None
    opt.step()
    shrink = {"torch": lr * lam, "paper": lam}[mode]
    decayed = set(_ids(groups[0]))
    for p in model.parameters():
        expected = before[id(p)] * (1 - shrink) if id(p) in decayed else before[id(p)]
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=0)


def test_decaying_every_parameter_is_torchs_model_parameters():
    # exempt_biases_and_norms=False: one decayed group of model.parameters(), as torch.optim.AdamW(model.parameters())
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
    decayed, exempt = weightdecay.param_groups(model, 0.1, exempt_biases_and_norms=False)
    assert [id(p) for p in decayed["params"]] == [id(p) for p in model.parameters()] and exempt["params"] == []
    assert decayed["weight_decay"] == 0.1
