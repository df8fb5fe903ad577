"""Recipes from the field: optimizers (and schedulers) configured as their sources configure them.

Each function names its source and returns what that source builds, written in this package's conventions
(docs/math.md, "Decay conventions"), so a user can reproduce a paper's or a framework's setting exactly and then
change one thing at a time.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from weightdecay.errors import UserError
from weightdecay.optim.adamw import AdamW
from weightdecay.optim.muon import muon_param_groups, muon_with_adamw
from weightdecay.optim.param_groups import param_groups

__all__ = ["bert_adam_weight_decay", "clip_global_norm_before_step", "fastai_adamw_one_cycle",
           "composer_decoupled_adamw", "timm_adamc", "moonlight_muon"]


def clip_global_norm_before_step(optimizer: torch.optim.Optimizer, max_norm: float = 1.0) -> Any:
    """Clip all of ``optimizer``'s gradients to one global norm before each step (a step pre-hook).

    BERT clips with ``tf.clip_by_global_norm(grads, clip_norm=1.0)``: ``g ← g·max_norm/max(‖g‖, max_norm)`` over
    all gradients at once (torch's ``clip_grad_norm_`` divides by ``‖g‖ + 1e-6`` instead, which differs by 1e-6).
    Returns the hook's handle (``handle.remove()`` undoes it).
    """
    def clip(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        if grads:
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2)).to(torch.float64))
            torch._foreach_mul_(grads, float(max_norm / max(float(norm), max_norm)))

    return optimizer.register_step_pre_hook(clip)


def bert_adam_weight_decay(model: nn.Module, lr: float, *, weight_decay: float = 0.01, num_train_steps: int | None = None,
                           num_warmup_steps: int = 0, clip_norm: float | None = 1.0
                           ) -> tuple[AdamW, torch.optim.lr_scheduler.LRScheduler | None]:
    """BERT's ``AdamWeightDecayOptimizer`` (google-research/bert, ``optimization.py``), its schedule and clipping.

    The ``torch`` convention without bias correction: ``update = m/(sqrt(v) + ε) + λ·p``, ``p ← p - lr_t·update``,
    i.e. ``p ← p·(1 - lr_t·λ) - lr_t·m/(sqrt(v) + ε)``, with β = (0.9, 0.999), ε = 1e-6. No decay for LayerNorm
    parameters and biases (BERT matches the names "LayerNorm", "layer_norm", "bias"; here the structure:
    norm layers and 1-D tensors); embeddings are decayed. Gradients clipped to global norm 1.0 before each step.
    With ``num_train_steps``, its schedule: linear warm-up over ``num_warmup_steps``, then linear decay to 0
    (``polynomial_decay`` with power 1.0).

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
        >>> opt, sched = bert_adam_weight_decay(model, 1e-4, num_train_steps=100, num_warmup_steps=10)
        >>> opt.param_groups[0]["eps"], opt.param_groups[0]["bias_correction"], len(opt.param_groups[0]["params"])
        (1e-06, False, 2)

    References:
        Devlin et al., "BERT", NAACL 2019; github.com/google-research/bert, optimization.py.
    """
    groups = [g for g in param_groups(model, weight_decay, exempt_embeddings=False) if g["params"]]
    opt = AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=weight_decay, decay="torch",
                bias_correction=False)
    if clip_norm is not None:
        clip_global_norm_before_step(opt, clip_norm)
    sched = None
    if num_train_steps is not None:
        if num_train_steps < 1 or not 0 <= num_warmup_steps <= num_train_steps:
            raise UserError(f"Invalid BERT schedule: num_train_steps={num_train_steps}, num_warmup_steps="
                            f"{num_warmup_steps} (need 0 <= warm-up <= steps, steps >= 1)")

        def multiplier(step: int) -> float:
            # BERT: decayed = lr·(1 - step/num_train_steps); during warm-up lr·step/num_warmup_steps instead.
            if step < num_warmup_steps:
                return step / num_warmup_steps
            return max(0.0, 1.0 - step / num_train_steps)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, multiplier)
    return opt, sched


def fastai_adamw_one_cycle(params: Iterable[Any], lr_max: float, total_steps: int, *, weight_decay: float = 0.01,
                           pct_start: float = 0.25, div: float = 25.0, div_final: float = 1e5,
                           moms: tuple[float, float, float] = (0.95, 0.85, 0.95)
                           ) -> tuple[AdamW, torch.optim.lr_scheduler.OneCycleLR]:
    """fast.ai's ``Adam`` with ``true_wd=True`` (its default, "AdamW") and ``fit_one_cycle``'s schedule.

    fastai's ``weight_decay`` step is ``p ← p·(1 - lr_t·wd)`` before the Adam step: the ``torch`` convention, with
    β = (0.9, 0.99), ε = 1e-5, wd = 0.01. ``fit_one_cycle``: lr from ``lr_max/div`` up to ``lr_max`` over
    ``pct_start`` of the steps and down to ``lr_max/div_final`` (cosine both ways), β1 from 0.95 down to 0.85
    and back: torch's OneCycleLR with ``div_factor=div``, ``final_div_factor=div_final/div``. ``peak_lr`` is
    ``lr_max`` (the lr the optimizer is built with, before OneCycleLR lowers it).

    Example:
        >>> import torch
        >>> opt, sched = fastai_adamw_one_cycle(torch.nn.Linear(3, 2).parameters(), 1e-2, total_steps=100)
        >>> round(opt.param_groups[0]["lr"], 6), opt.param_groups[0]["betas"], opt.param_groups[0]["peak_lr"]
        (0.0004, (0.95, 0.99), 0.01)

    References:
        fastai ``fastai/optimizer.py`` (``Adam``, ``weight_decay``), ``fastai/callback/schedule.py``
        (``fit_one_cycle``, ``combined_cos``); Smith & Topin 2017 (super-convergence).
    """
    opt = AdamW(params, lr=lr_max, betas=(moms[0], 0.99), eps=1e-5, weight_decay=weight_decay, decay="torch",
                peak_lr=lr_max)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr_max, total_steps=total_steps, pct_start=pct_start, anneal_strategy="cos",
        div_factor=div, final_div_factor=div_final / div, cycle_momentum=True, base_momentum=moms[1],
        max_momentum=moms[0])
    return opt, sched


def composer_decoupled_adamw(params: Iterable[Any], lr: float = 1e-3, *, betas: tuple[float, float] = (0.9, 0.95),
                             eps: float = 1e-8, weight_decay: float = 1e-5, amsgrad: bool = False) -> AdamW:
    """MosaicML Composer's ``DecoupledAdamW``: the ``paper`` convention with its defaults.

    Composer: ``p ← p·(1 - (lr_t/initial_lr)·λ)`` with ``initial_lr`` each group's lr at construction, then the
    Adam step (β = (0.9, 0.95), ε = 1e-8, λ = 1e-5): ``decay="paper"`` with ``peak_lr`` that same lr.

    Example:
        >>> import torch
        >>> opt = composer_decoupled_adamw(torch.nn.Linear(3, 2).parameters())
        >>> opt.param_groups[0]["decay"], opt.param_groups[0]["betas"]
        ('paper', (0.9, 0.95))

    References:
        composer ``composer/optim/decoupled_weight_decay.py`` (``DecoupledAdamW``).
    """
    return AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, decay="paper")


def timm_adamc(params: Iterable[Any], lr: float = 1e-3, *, weight_decay: float = 1e-2,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> AdamW:
    """AdamC as timm's ``AdamW(corrected_weight_decay=True)``: ``decay="corrected"``, per group.

    ``s_t = (lr_t²/peak_lr)·λ``. timm takes the reference lr from the constructor's default ``lr`` for every
    group; here each group's ``peak_lr`` (its own lr at construction) is used, as Defazio et al. define it — the
    two agree whenever all groups share the constructor's lr.

    Example:
        >>> import torch
        >>> timm_adamc(torch.nn.Linear(3, 2).parameters()).param_groups[0]["decay"]
        'corrected'

    References:
        Defazio et al., "Why Gradients Rapidly Increase Near the End of Training" (2025);
        timm ``timm/optim/adamw.py`` (``corrected_weight_decay``).
    """
    return AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decay="corrected")


def moonlight_muon(model: nn.Module, lr: float = 2e-2, *, weight_decay: float = 0.1, momentum: float = 0.95,
                   adamw_betas: tuple[float, float] = (0.9, 0.95), adamw_names: Iterable[str] = ()
                   ) -> torch.optim.Optimizer:
    """Moonlight's Muon (Liu et al. 2025): update-RMS matching, decoupled λ = 0.1, AdamW with the same lr elsewhere.

    For a matrix of shape (A, B): ``p ← p·(1 - lr_t·λ) - 0.2·sqrt(max(A, B))·lr_t·O_t`` with ``O_t`` the
    Newton-Schulz orthogonalization of the Nesterov momentum (μ = 0.95, 5 iterations): torch.optim.Muon with
    ``adjust_lr_fn="match_rms_adamw"``, decay ``torch`` with the unadjusted lr. Moonlight's momentum
    ``b ← μ·b + g``, ``g + μ·b`` is torch's ``lerp`` form times ``1/(1-μ)``, which the orthogonalization's
    normalization removes. Every other parameter: AdamW, same lr and λ, β = (0.9, 0.95). Moonlight runs the
    iteration in bfloat16; torch.optim.Muon in the parameter's dtype.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> opt = moonlight_muon(model)
        >>> [type(o).__name__ for o in opt.optimizers], opt.param_groups[0]["adjust_lr_fn"]
        (['Muon', 'AdamW'], 'match_rms_adamw')

    References:
        J. Liu et al., "Muon is Scalable for LLM Training" (arXiv 2502.16982, 2025); github.com/MoonshotAI/Moonlight.
    """
    muon, rest = muon_param_groups(model, weight_decay, adamw_names=adamw_names)
    # Moonlight decays every AdamW parameter too (its reference code passes wd to all groups).
    rest = [{**g, "weight_decay": weight_decay} for g in rest]
    return muon_with_adamw(muon, rest, lr=lr, weight_decay=weight_decay, decay="torch", adamw_betas=adamw_betas,
                           momentum=momentum, nesterov=True, adjust_lr_fn="match_rms_adamw", ns_steps=5)
