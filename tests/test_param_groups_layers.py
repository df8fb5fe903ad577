"""Per-group λ and per-layer lr in weightdecay.param_groups: Megatron's ``wd_mult``, Hugging Face's name and type
rules, timm's and BEiT's layer-wise lr decay (checked against timm's own ``param_groups_layer_decay``), the
choice whether a layer's decay follows its lr (checked against the shrink formula by a step), the factors kept in
the state dict and in the Monitor's records."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightdecay
from weightdecay.errors import UserError
from weightdecay.optim.param_groups import HF_NO_DECAY_PATTERNS, layer_decay_weight_decay, layer_ids

from peers import timm_param_groups


class Block(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.norm1, self.attn, self.norm2, self.mlp = nn.LayerNorm(d), nn.Linear(d, d), nn.LayerNorm(d), nn.Linear(d, d)

    def forward(self, x):
        return x + self.mlp(self.norm2(x + self.attn(self.norm1(x))))


class ViTLike(nn.Module):
    """timm's VisionTransformer in miniature: the same parameter names, ``group_matcher`` and ``no_weight_decay``."""

    def __init__(self, depth: int = 3, d: int = 8):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, d))
        self.pos_embed = nn.Parameter(torch.randn(1, 5, d))
        self.patch_embed = nn.Conv2d(3, d, 2, stride=2)
        self.blocks = nn.ModuleList([Block(d) for _ in range(depth)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 4)

    def group_matcher(self, coarse: bool = False):  # timm's VisionTransformer.group_matcher
        return dict(stem=r"^cls_token|reg_token|pos_embed|patch_embed|norm_pre",
                    blocks=[(r"^blocks\.(\d+)", None), (r"^norm", (99999,))])

    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}

    def forward(self, x):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(len(x), -1, -1), t], 1) + self.pos_embed
        for block in self.blocks:
            t = block(t)
        return self.head(self.norm(t)[:, 0])


def _per_param(groups, keys):
    return {id(p): tuple(g[k] for k in keys) for g in groups for p in g["params"]}


@pytest.mark.parametrize("layer_decay", [0.75, 0.5])
def test_layer_decay_matches_timms_param_groups_layer_decay(layer_decay):
    """timm's groups carry ``lr_scale`` and its scheduler writes ``lr = base_lr·lr_scale``; ours hold that lr
    directly (PyTorch's schedulers scale each group's own lr). Same scale, same λ, for every tensor; and the two
    optimizers then take the same steps. timm's rule is BEiT's ``layer_decay^(depth+1−i)``, layer 0 the stem.

    Where timm differs from BEiT's code, which it cites: its ViT ``group_matcher`` puts the final ``norm`` with
    the last block (``MATCH_PREV_GROUP``, scale ``layer_decay``), where BEiT's ``get_layer_id_for_vit`` gives it
    layer ``depth + 1`` with the head (scale 1). Our default numbering is BEiT's (next test); here the layers come
    from timm's own map, so that the comparison is of the scales, λ and steps."""
    timm = timm_param_groups()
    torch.manual_seed(0)
    model = ViTLike()
    theirs = timm.param_groups_layer_decay(model, weight_decay=0.05, no_weight_decay_list=model.no_weight_decay(),
                                           layer_decay=layer_decay)
    timm_layers = timm.group_parameters(model, model.group_matcher(coarse=False), reverse=True)
    assert {n for n, i in layer_ids(model).items() if timm_layers[n] != i} == {"norm.weight", "norm.bias"}
    ours = weightdecay.param_groups(model, 0.05, layer_decay=layer_decay, lr=1e-3, decay="torch",
                                    decay_follows_lr=True, layer_of=timm_layers.__getitem__)
    assert _per_param(ours, ("lr_scale", "weight_decay")) == _per_param(theirs, ("lr_scale", "weight_decay"))
    depth = len(model.blocks)
    assert sorted({g["lr_scale"] for g in ours}) == sorted(layer_decay ** (depth + 1 - i) for i in range(depth + 2))
    for g in ours:
        assert g["lr"] == pytest.approx(1e-3 * g["lr_scale"])

    twin = ViTLike()
    twin.load_state_dict(model.state_dict())
    twin_groups = timm.param_groups_layer_decay(twin, weight_decay=0.05, no_weight_decay_list=twin.no_weight_decay(),
                                                layer_decay=layer_decay)
    reference = torch.optim.AdamW([{**g, "lr": 1e-3 * g["lr_scale"]} for g in twin_groups])
    opt = weightdecay.AdamW(ours)
    x = torch.randn(4, 3, 4, 4)
    for _ in range(3):
        for m, o in ((model, opt), (twin, reference)):
            o.zero_grad()
            m(x).square().mean().backward()
            o.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("decay", ["torch", "paper", "corrected", "constant"])
@pytest.mark.parametrize("follows", [True, False])
def test_whether_the_decay_follows_the_layers_lr(decay, follows):
    """With zero gradients a step is the shrink alone: ``p ← p·(1 − s_t)``. Following the lr, layer i's ``s_t`` is
    ``lr_scale`` times the top layer's; not following, every layer shrinks as the top one does."""
    torch.manual_seed(0)
    model = ViTLike(depth=2)
    lr, lam = 1e-2, 0.5 if decay != "constant" else 1e-3
    groups = weightdecay.param_groups(model, lam, layer_decay=0.5, lr=lr, decay=decay, decay_follows_lr=follows)
    opt = weightdecay.AdamW(groups)
    before = [[p.detach().clone() for p in g["params"]] for g in groups]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    top = weightdecay.shrink(decay, lam, lr, lr)  # the shrink at lr_scale 1
    for g, old in zip(groups, before):
        expected = 0.0 if g["wd_mult"] == 0 else top * (g["lr_scale"] if follows else 1.0)
        for p, p0 in zip(g["params"], old):
            torch.testing.assert_close(p.detach(), p0 * (1 - expected))


def test_layer_decay_weight_decay_formula():
    """λ·target/native with native the mode's own scaling of s_t when lr_t and peak_lr both scale."""
    assert layer_decay_weight_decay(0.1, 0.25, "torch", follows_lr=True) == 0.1
    assert layer_decay_weight_decay(0.1, 0.25, "torch", follows_lr=False) == pytest.approx(0.4)
    assert layer_decay_weight_decay(0.1, 0.25, "paper", follows_lr=True) == pytest.approx(0.025)
    assert layer_decay_weight_decay(0.1, 0.25, "paper", follows_lr=False) == 0.1
    assert layer_decay_weight_decay(0.1, 0.25, "stable", follows_lr=False) == pytest.approx(0.4)
    assert layer_decay_weight_decay(0.1, 0.25, "l2", follows_lr=False) == pytest.approx(0.4)


def _beit_layer_id(name: str, num_layers: int) -> int:
    """BEiT's ``get_layer_id_for_vit`` (unilm/beit/optim_factory.py), for the names a ViT has."""
    if name in ("cls_token", "mask_token", "pos_embed") or name.startswith("patch_embed"):
        return 0
    if name.startswith("blocks"):
        return int(name.split(".")[1]) + 1
    return num_layers - 1


def test_layer_ids_are_beits_numbering():
    model = ViTLike(depth=3)
    assert layer_ids(model) == {n: _beit_layer_id(n, 3 + 2) for n, _ in model.named_parameters()}
    groups = weightdecay.param_groups(model, 0.05, layer_decay=0.65, lr=1e-3, decay="torch", decay_follows_lr=True)
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    # BEiT: layer_scales = [layer_decay ** (num_layers + 1 - i) for i in range(num_layers + 2)], num_layers = depth
    beit = [0.65 ** (3 + 1 - i) for i in range(3 + 2)]
    assert {n: scale[id(p)] for n, p in model.named_parameters()} == pytest.approx(
        {n: beit[_beit_layer_id(n, 3 + 2)] for n, _ in model.named_parameters()})


def test_layer_decay_refuses_what_it_cannot_decide():
    model = ViTLike()
    with pytest.raises(UserError, match="decay_follows_lr=True or False"):
        weightdecay.param_groups(model, 0.1, layer_decay=0.75, lr=1e-3, decay="torch")
    with pytest.raises(UserError, match="needs lr= and decay="):
        weightdecay.param_groups(model, 0.1, layer_decay=0.75, decay_follows_lr=True)
    with pytest.raises(UserError, match="Invalid layer_decay"):
        weightdecay.param_groups(model, 0.1, layer_decay=1.5, lr=1e-3, decay="torch", decay_follows_lr=True)
    with pytest.raises(UserError, match="no stack of blocks"):
        weightdecay.param_groups(nn.Linear(2, 2), 0.1, layer_decay=0.75, lr=1e-3, decay="torch", decay_follows_lr=True)
    with pytest.raises(UserError, match="Invalid wd_mult"):
        weightdecay.param_groups(model, 0.1, wd_mult={"head": -1.0})


def test_wd_mult_scales_lambda_of_the_matched_decayed_tensors():
    """Megatron's groups: ``weight_decay = λ·wd_mult``, 0 for the exempt ones (Megatron's ``wd_mult = 0``)."""
    model = ViTLike()
    groups = weightdecay.param_groups(model, 0.1, wd_mult={"head": 0.5, "blocks.*.mlp.weight": 2.0}, decay="paper")
    by_name = {name: g for name, p in model.named_parameters() for g in groups if any(q is p for q in g["params"])}
    assert by_name["head.weight"]["weight_decay"] == pytest.approx(0.05) and by_name["head.weight"]["wd_mult"] == 0.5
    assert by_name["blocks.1.mlp.weight"]["weight_decay"] == pytest.approx(0.2)
    assert by_name["blocks.1.attn.weight"]["weight_decay"] == 0.1 and by_name["blocks.1.attn.weight"]["wd_mult"] == 1
    assert by_name["head.bias"]["weight_decay"] == 0.0 and by_name["head.bias"]["wd_mult"] == 0.0
    assert all(g["decay"] == "paper" for g in groups)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_factors_are_saved_with_the_state_dict_and_recorded_by_the_monitor(tmp_path):
    from weightdecay.monitors import Monitor, read_records

    torch.manual_seed(0)
    model = ViTLike(depth=2)
    groups = weightdecay.param_groups(model, 0.1, layer_decay=0.5, wd_mult={"head": 0.5}, lr=1e-3, decay="paper",
                                      decay_follows_lr=False)
    opt = weightdecay.AdamW(groups)
    monitor = Monitor(opt, model, every=1, detect=False)
    model(torch.randn(2, 3, 4, 4)).sum().backward()
    opt.step()
    saved = opt.state_dict()
    assert [(g["lr_scale"], g["wd_mult"]) for g in saved["param_groups"]] == [(g["lr_scale"], g["wd_mult"])
                                                                              for g in groups]
    fresh = weightdecay.AdamW(weightdecay.param_groups(model, 0.1, layer_decay=0.9, lr=1e-3, decay="paper",
                                                       wd_mult={"head": 0.5}, decay_follows_lr=False))
    fresh.load_state_dict(saved)
    assert [g["lr_scale"] for g in fresh.param_groups] == [g["lr_scale"] for g in groups]
    head = next(r for r in monitor.records if r["name"] == "head.weight")
    assert (head["lr_scale"], head["wd_mult"], head["weight_decay"]) == (1.0, 0.5, pytest.approx(0.05))
    first = next(r for r in monitor.records if r["name"] == "patch_embed.weight")
    assert first["lr_scale"] == 0.125 and first["lr"] == pytest.approx(1.25e-4)
    path = monitor.to_csv(tmp_path / "run.csv")
    assert {r["name"]: r["lr_scale"] for r in read_records(path)} == {r["name"]: r["lr_scale"]
                                                                      for r in monitor.records}


# --- selection by name and type, as Hugging Face's Trainer does it -----------------------------------------------

class RMSNorm(nn.Module):
    """A model's own RMSNorm (not torch's): type lists miss it, and with a name like ``ln_f`` so do name lists."""

    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, d))  # 2-D on purpose: the ndim rule does not catch it either


class CustomLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(10, 4)
        self.proj = nn.Linear(4, 4)
        self.ln_f = RMSNorm(4)


def test_hugging_face_patterns_reproduce_trainers_decay_names():
    """Trainer.get_decay_parameter_names on a real (tiny) Llama: nn.LayerNorm by type, the rest by regex. Our
    HF_NO_DECAY_PATTERNS with its type and without our structural rules decays exactly the same names."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, attention_bias=True)
    model = transformers.LlamaForCausalLM(config)
    expected = set(transformers.Trainer.get_decay_parameter_names(None, model))
    groups = weightdecay.param_groups(model, 0.1, no_decay_patterns=HF_NO_DECAY_PATTERNS,
                                      no_decay_types=(nn.LayerNorm,), exempt_biases_and_norms=False,
                                      exempt_embeddings=False)
    decayed = {id(p) for p in groups[0]["params"]}
    assert {n for n, p in model.named_parameters() if id(p) in decayed} == expected
    assert any("norm" in n for n, _ in model.named_parameters()) and not any("norm" in n for n in expected)


def test_custom_norm_classes_are_caught_by_structure():
    """transformers#35927: a custom RMSNorm named ``ln_f`` is decayed by Trainer's rule; ours exempts it by its
    class name, and ``no_decay_types`` exempts any class the user names."""
    transformers = pytest.importorskip("transformers")
    model = CustomLM()
    assert "ln_f.weight" in transformers.Trainer.get_decay_parameter_names(None, model)
    decayed, exempt = weightdecay.param_groups(model, 0.1)
    assert any(p is model.ln_f.weight for p in exempt["params"])
    decayed, exempt = weightdecay.param_groups(model, 0.1, no_decay_types=("Linear",), exempt_embeddings=False)
    assert [p for p in decayed["params"]] == [model.wte.weight]


def test_wildcard_names():
    model = ViTLike()
    decayed, exempt = weightdecay.param_groups(model, 0.1, no_decay_names=("blocks.*.attn.weight",))
    assert {id(b.attn.weight) for b in model.blocks} <= {id(p) for p in exempt["params"]}
    assert {id(b.mlp.weight) for b in model.blocks} <= {id(p) for p in decayed["params"]}


@pytest.mark.parametrize("convention", ["torch", "paper"])
def test_advise_tells_the_per_layer_shrink_param_groups_gives(convention):
    """``advise``'s per-layer shrinks are those of the groups param_groups builds (with the same λ everywhere:
    ``layer_decay=1`` groups' λ at the layer's lr), and its sentence names the convention's own behaviour."""
    from weightdecay.rules import advise

    lr, lam, depth = 1e-3, 0.05, 2
    a = advise(lr=lr, weight_decay=lam, convention=convention, batch_size=128, dataset_size=50_000, epochs=30,
               layer_decay=0.5, depth=depth)
    model = ViTLike(depth=depth)
    for follows, key in ((True, "shrink_follows_lr"), (False, "shrink_fixed")):
        groups = weightdecay.param_groups(model, lam, layer_decay=0.5, lr=lr, decay=convention,
                                          decay_follows_lr=follows)
        got = {g["lr_scale"]: weightdecay.shrink(convention, g["weight_decay"], g["lr"], g["lr"])
               for g in groups if g["wd_mult"]}
        assert got == pytest.approx({r["lr_scale"]: r[key] for r in a.layers})
    same = {r["lr_scale"]: r["shrink_same_lambda"] for r in a.layers}
    assert same == pytest.approx({sc: weightdecay.shrink(convention, lam, lr * sc, lr * sc) for sc in same})
    assert ("follow its lr" if convention == "torch" else "independent of its lr") in a.layer_note


def test_advise_command_prints_the_per_layer_table(capsys):
    from weightdecay.cli import main

    base = ["advise", "--lr", "1e-3", "--weight-decay", "0.05", "--batch-size", "128", "--dataset-size", "50000",
            "--epochs", "30"]
    assert main([*base, "--convention", "paper", "--layer-decay", "0.5", "--depth", "2"]) == 0
    out = capsys.readouterr().out
    assert "s, follows lr" in out and "independent of its lr" in out
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit() and len(line.split()) == 5]
    assert [float(r[1]) for r in rows] == [0.125, 0.25, 0.5, 1.0]
    assert [float(r[3]) for r in rows] == pytest.approx([0.05 * sc for sc in (0.125, 0.25, 0.5, 1.0)])
    assert main([*base, "--layer-decay", "0.5"]) == 2
    assert "needs both layer_decay" in capsys.readouterr().err
