"""Each recipe against its source's update, written out here in float64 from that source's code."""

from __future__ import annotations

import math

import pytest
import torch

from weightdecay.optim import recipes

F64 = torch.float64


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Embedding(7, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 3)).to(F64)


def _grads(model, step):
    g = torch.Generator().manual_seed(100 + step)
    return {n: torch.randn(p.shape, generator=g, dtype=F64) * (3.0 if step % 2 else 0.1)
            for n, p in model.named_parameters()}


def test_bert_adam_weight_decay_is_bert_optimization_py():
    model = _model()
    ref = {n: p.detach().clone() for n, p in model.named_parameters()}
    m = {n: torch.zeros_like(p) for n, p in ref.items()}
    v = {n: torch.zeros_like(p) for n, p in ref.items()}
    opt, sched = recipes.bert_adam_weight_decay(model, 1e-2, weight_decay=0.1, num_train_steps=8, num_warmup_steps=3)
    excluded = lambda n: n.startswith("1.") or n.endswith("bias")  # noqa: E731  "LayerNorm", "bias"
    for step in range(8):
        grads = _grads(model, step)
        for n, p in model.named_parameters():
            p.grad = grads[n].clone()
        opt.step()
        sched.step()
        # google-research/bert: clip_by_global_norm(1.0); then per variable, lr from warm-up or linear decay
        lr = 1e-2 * (step / 3 if step < 3 else 1 - step / 8)
        norm = math.sqrt(sum(float(g.square().sum()) for g in grads.values()))
        for n in ref:
            g = grads[n] * min(1.0, 1.0 / norm)
            m[n] = 0.9 * m[n] + 0.1 * g
            v[n] = 0.999 * v[n] + 0.001 * g * g
            update = m[n] / (v[n].sqrt() + 1e-6)
            if not excluded(n):
                update = update + 0.1 * ref[n]
            ref[n] = ref[n] - lr * update
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), ref[n], rtol=1e-10, atol=1e-12, msg=n)
    assert not excluded("0.weight")  # embeddings are decayed


def test_fastai_adamw_one_cycle_is_fastai_adam_true_wd():
    model = _model()
    ref = {n: p.detach().clone() for n, p in model.named_parameters()}
    avg = {n: torch.zeros_like(p) for n, p in ref.items()}
    sqr = {n: torch.zeros_like(p) for n, p in ref.items()}
    total = 20
    opt, sched = recipes.fastai_adamw_one_cycle(model.parameters(), 1e-2, total, weight_decay=0.1)
    lrs, moms = [], []
    for step in range(1, total + 1):
        lr, mom = opt.param_groups[0]["lr"], opt.param_groups[0]["betas"][0]
        lrs.append(lr)
        moms.append(mom)
        grads = _grads(model, step)
        for n, p in model.named_parameters():
            p.grad = grads[n].clone()
        opt.step()
        if step < total:
            sched.step()
        # fastai.optimizer: weight_decay (true_wd) → average_grad(dampening) → average_sqr_grad → adam_step
        for n in ref:
            ref[n] = ref[n] * (1 - lr * 0.1)
            avg[n] = mom * avg[n] + (1 - mom) * grads[n]
            sqr[n] = 0.99 * sqr[n] + 0.01 * grads[n] ** 2
            debias1, debias2 = 1 - mom ** step, 1 - 0.99 ** step
            ref[n] = ref[n] - lr / debias1 * avg[n] / ((sqr[n] / debias2).sqrt() + 1e-5)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), ref[n], rtol=1e-10, atol=1e-12, msg=n)
    # fit_one_cycle's shape: lr_max/div → lr_max → lr_max/div_final, β1 0.95 → 0.85 → 0.95 (cosine)
    assert lrs[0] == pytest.approx(1e-2 / 25) and max(lrs) == pytest.approx(1e-2)
    assert lrs[-1] == pytest.approx(1e-2 / 1e5)
    assert moms[0] == pytest.approx(0.95) and min(moms) == pytest.approx(0.85)
    assert lrs.index(max(lrs)) == moms.index(min(moms)) == round(0.25 * total) - 1
    assert opt.param_groups[0]["peak_lr"] == 1e-2


def _adam_step(p, g, st, lr, betas, eps, step):
    b1, b2 = betas
    st["m"] = b1 * st["m"] + (1 - b1) * g
    st["v"] = b2 * st["v"] + (1 - b2) * g * g
    return p - lr / (1 - b1 ** step) * st["m"] / ((st["v"] / (1 - b2 ** step)).sqrt() + eps)


@pytest.mark.parametrize("recipe", ["composer", "adamc"])
def test_composer_and_adamc_per_group_reference_lr(recipe):
    # Two groups with their own lr: Composer divides by each group's initial lr; AdamC by each group's peak.
    model = _model()
    groups = [{"params": [model[2].weight], "lr": 1e-2}, {"params": [model[0].weight], "lr": 2e-3}]
    make = recipes.composer_decoupled_adamw if recipe == "composer" else recipes.timm_adamc
    opt = make(groups, lr=1e-3, weight_decay=0.3)
    betas = (0.9, 0.95) if recipe == "composer" else (0.9, 0.999)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: [1.0, 0.5, 0.25, 0.7][k % 4])
    ref = [(g["params"][0].detach().clone(), g["lr"]) for g in groups]
    states = [{"m": torch.zeros_like(p), "v": torch.zeros_like(p)} for p, _ in ref]
    for step in range(1, 7):
        lrs = [g["lr"] for g in opt.param_groups]
        gs = [torch.randn(p.shape, dtype=F64) for p, _ in ref]
        for group, g in zip(opt.param_groups, gs):
            group["params"][0].grad = g.clone()
        opt.step()
        sched.step()
        for i, ((p, initial), g, lr) in enumerate(zip(ref, gs, lrs)):
            # composer: decay_factor = lr / initial_lr; p.mul_(1 - decay_factor * wd); AdamC: lr² / peak
            factor = lr / initial if recipe == "composer" else lr * lr / initial
            p = p * (1 - factor * 0.3)
            ref[i] = (_adam_step(p, g, states[i], lr, betas, 1e-8, step), initial)
    for group, (p, _) in zip(opt.param_groups, ref):
        torch.testing.assert_close(group["params"][0].detach(), p, rtol=1e-10, atol=1e-12)


def _moonlight_newton_schulz(G, steps=5, eps=1e-7):
    # MoonshotAI/Moonlight examples/toy_train.py, zeropower_via_newtonschulz5, as written (bfloat16)
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.bfloat16()
    X /= X.norm() + eps
    if G.size(0) > G.size(1):
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(0) > G.size(1):
        X = X.T
    return X.to(G.dtype)


def test_moonlight_muon_is_moonlights_update():
    # Moonlight's formulas (momentum b ← μ·b + g, Nesterov g + μ·b, lr·0.2·sqrt(max(A, B)), p·(1 - lr·λ), AdamW
    # with the same lr and λ elsewhere) in float64. The orthogonalization runs in bfloat16 in both codes, with
    # different operation orders (addmm against separate products), so the reference calls torch's for the step
    # and the test checks it against Moonlight's separately, at bfloat16 precision. Moonlight's momentum is
    # torch's lerp form times 1/(1-μ), which the orthogonalization's normalization removes; the reference feeds
    # (1-μ)·(g + μ·b).
    from torch.optim._muon import _zeropower_via_newtonschulz

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 9), torch.nn.Tanh(), torch.nn.Linear(9, 4)).to(F64)
    opt = recipes.moonlight_muon(model, lr=2e-2, weight_decay=0.1)
    ref = {n: p.detach().clone() for n, p in model.named_parameters()}
    buf = {n: torch.zeros_like(p) for n, p in ref.items()}
    m1 = {n: torch.zeros_like(p) for n, p in ref.items()}
    m2 = {n: torch.zeros_like(p) for n, p in ref.items()}
    lr, wd, mu = 2e-2, 0.1, 0.95
    for step in range(1, 5):
        grads = _grads(model, step)
        for n, p in model.named_parameters():
            p.grad = grads[n].clone()
        opt.step()
        for n, p in ref.items():
            g = grads[n]
            if p.ndim == 2:  # Moonlight's Muon branch
                buf[n] = mu * buf[n] + g
                nesterov = g + mu * buf[n]
                u = _zeropower_via_newtonschulz((1 - mu) * nesterov, (3.4445, -4.7750, 2.0315), 5, 1e-7)
                moonlight_u = _moonlight_newton_schulz(nesterov)
                diff = (u.to(F64) - moonlight_u).abs()  # bfloat16 through five iterations
                assert float(diff.norm() / moonlight_u.norm()) < 0.08 and float(diff.max()) < 0.15
                adjusted = lr * 0.2 * math.sqrt(max(p.shape))
                ref[n] = p * (1 - lr * wd) - adjusted * u.to(F64)  # torch adds the bfloat16 update to p
            else:  # its AdamW branch: betas (0.9, 0.95), eps 1e-8, same lr and wd
                m1[n] = torch.lerp(m1[n], g, 1 - 0.9)
                m2[n] = torch.lerp(m2[n], g * g, 1 - 0.95)
                scale = (1 - 0.9 ** step) / (1 - 0.95 ** step) ** 0.5
                ref[n] = p * (1 - lr * wd) - lr / scale * m1[n] / (1e-8 + m2[n].sqrt())
    for n, p in model.named_parameters():
        # Moonlight's AdamW ε sits outside the bias correction (ε·sqrt(1-β2^t) in torch's terms): ~1e-7 relative.
        torch.testing.assert_close(p.detach(), ref[n], rtol=1e-6, atol=1e-9, msg=n)


def test_convert_knows_every_recipes_framework():
    # `weightdecay convert --from FRAMEWORK` reads the same mode the recipe builds
    from weightdecay.rules.conventions import CONVENTIONS

    model = _model()
    built = {
        "bert": recipes.bert_adam_weight_decay(model, 1e-3)[0],
        "fastai": recipes.fastai_adamw_one_cycle(model.parameters(), 1e-3, 10)[0],
        "composer": recipes.composer_decoupled_adamw(model.parameters()),
        "timm-corrected": recipes.timm_adamc(model.parameters()),
        "moonlight": recipes.moonlight_muon(torch.nn.Linear(3, 4).to(F64)),
    }
    for name, opt in built.items():
        assert {g["decay"] for g in opt.param_groups} == {CONVENTIONS[name].mode}, name
