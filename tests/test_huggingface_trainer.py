"""weightdecay's optimizer inside Hugging Face's real Trainer, in one line (``optimizer_cls_and_kwargs``): Trainer's
own decay groups, its lr and scheduler; ``paper(λ)`` trains exactly as Trainer's torch.optim.AdamW with
``λ·lr`` (the identity paper(λ) ≡ torch(λ/peak_lr) read backwards), and the structural groups on request."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightdecay
from weightdecay.optim.huggingface import trainer_optimizer

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")


class RMSNorm(nn.Module):
    """A model's own norm class, as custom models have: Trainer's name rule misses it under this name."""

    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(6, 16)
        self.ln_f = RMSNorm(16)
        self.out = nn.Linear(16, 1)

    def forward(self, x, labels=None):
        y = self.out(self.ln_f(torch.tanh(self.inp(x))))
        return {"loss": ((y - labels) ** 2).mean(), "logits": y}


class Rows(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 6, generator=g)
        self.y = self.x[:, :1] * 2 - self.x[:, 1:2]

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


def _train(tmp_path, weight_decay, trainer_options=None):
    """Ten steps of the real Trainer; ``trainer_options(args, model)`` adds Trainer's keyword arguments."""
    torch.manual_seed(0)
    model = Regressor()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=10, per_device_train_batch_size=8, learning_rate=2e-2,
        weight_decay=weight_decay, lr_scheduler_type="cosine", warmup_steps=2, report_to=[], save_strategy="no",
        use_cpu=True, disable_tqdm=True, seed=0, optim="adamw_torch")
    extra = trainer_options(args, model) if trainer_options is not None else {}
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Rows(), **extra)
    trainer.train()
    opt = trainer.optimizer
    while isinstance(getattr(opt, "optimizer", None), torch.optim.Optimizer):  # accelerate's wrapper
        opt = opt.optimizer
    return trainer, opt, [p.detach().clone() for p in model.parameters()]


def test_one_line_gives_trainers_groups_lr_and_schedule(tmp_path):
    trainer, opt, _ = _train(tmp_path, 0.5, lambda args, model: {
        "optimizer_cls_and_kwargs": trainer_optimizer(args, decay="paper")})
    assert isinstance(opt, weightdecay.AdamW)
    decayed_names = set(trainer.get_decay_parameter_names(trainer.model))
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    assert [{names[id(p)] for p in g["params"]} for g in opt.param_groups] == [
        decayed_names, set(names.values()) - decayed_names]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]
    assert all(g["decay"] == "paper" and g["peak_lr"] == 2e-2 for g in opt.param_groups)
    assert "ln_f.weight" in decayed_names  # Trainer's own rule decays the custom norm (transformers#35927)


def test_paper_in_trainer_is_trainers_adamw_with_lambda_times_lr(tmp_path):
    """Through Trainer's warm-up and cosine schedule: paper(λ) shrinks by (lr_t/2e-2)·λ, which is torch's
    lr_t·(λ/2e-2); Trainer's own AdamW with λ/2e-2 takes the same steps."""
    _, _, theirs = _train(tmp_path, 0.4 / 2e-2)
    _, opt, ours = _train(tmp_path, 0.4, lambda args, model: {
        "optimizer_cls_and_kwargs": trainer_optimizer(args, decay="paper")})
    assert opt.param_groups[0]["lr"] < 2e-2  # the schedule ran
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_structural_groups_on_request(tmp_path):
    trainer, opt, _ = _train(tmp_path, 0.1, lambda args, model: {
        "optimizer_cls_and_kwargs": trainer_optimizer(args, decay="torch", model=model)})
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert decayed == {id(trainer.model.inp.weight), id(trainer.model.out.weight)}  # ln_f.weight exempt now


def test_schedule_free_through_trainer(tmp_path):
    """Trainer calls a schedule-free optimizer's train() itself (a step in eval mode would raise): ten steps."""
    _, opt, _ = _train(tmp_path, 0.1, lambda args, model: {
        "optimizer_cls_and_kwargs": trainer_optimizer(args, decay="paper",
                                                      optimizer_cls=weightdecay.optim.ScheduleFreeAdamW)})
    assert isinstance(opt, weightdecay.optim.ScheduleFreeAdamW)
    assert opt.param_groups[0]["k"] == 10


def test_refuses_what_is_not_training_arguments():
    from weightdecay.errors import UserError

    with pytest.raises(UserError, match="needs the TrainingArguments"):
        trainer_optimizer(object())
