"""The small models the built-in tasks train. Each names its scale-invariant weights (those followed by a
normalization layer) in ``scale_invariant``, for the rotation diagnostics."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP", "SmallCNN", "CharTransformer"]


class MLP(nn.Sequential):
    """``Flatten → (Linear → ReLU) × depth → Linear``.

    >>> MLP(64, 10, width=32, depth=2)(torch.zeros(5, 8, 8)).shape
    torch.Size([5, 10])
    """

    scale_invariant: tuple[str, ...] = ()

    def __init__(self, inputs: int, classes: int, width: int = 128, depth: int = 2) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        for i in range(depth):
            layers += [nn.Linear(inputs if i == 0 else width, width), nn.ReLU()]
        layers.append(nn.Linear(width if depth else inputs, classes))
        super().__init__(*layers)


class SmallCNN(nn.Module):
    """Conv blocks ``Conv3×3 → [BatchNorm] → ReLU → MaxPool2``, then ``Linear → [BatchNorm] → ReLU → Linear``.

    With ``batch_norm=True`` the convolutions and the hidden linear layer have no bias (the norm's shift
    replaces it) and their weights are scale-invariant. ``channels=(32, 64)`` on 28×28 grey images is the
    Fashion-MNIST CNN; ``channels=(32, 64, 128)`` on 32×32 colour images the DataCamp-style CIFAR-10 CNN.

    >>> SmallCNN(1, 10, channels=(8, 16), hidden=32, image_size=28)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, classes: int, *, channels: tuple[int, ...] = (32, 64), hidden: int = 128,
                 image_size: int = 28, batch_norm: bool = True) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        invariant: list[str] = []
        previous, size = in_channels, image_size
        for c in channels:
            conv = nn.Conv2d(previous, c, kernel_size=3, padding=1, bias=not batch_norm)
            if batch_norm:
                invariant.append(f"features.{len(blocks)}.weight")
            blocks += [conv, *([nn.BatchNorm2d(c)] if batch_norm else []), nn.ReLU(), nn.MaxPool2d(2)]
            previous, size = c, size // 2
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(previous * size * size, hidden, bias=not batch_norm)]
        if batch_norm:
            invariant.append("classifier.1.weight")
            head.append(nn.BatchNorm1d(hidden))
        head += [nn.ReLU(), nn.Linear(hidden, classes)]
        self.classifier = nn.Sequential(*head)
        self.scale_invariant = tuple(invariant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:  # grey images without a channel axis
            x = x.unsqueeze(1)
        return self.classifier(self.features(x))


class Block(nn.Module):
    """A pre-LayerNorm transformer block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``, causal attention."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class CharTransformer(nn.Module):
    """A small GPT-style character model: token + position embeddings, pre-LN blocks, final LayerNorm, head.

    >>> CharTransformer(vocab=20, context=16, dim=32, layers=1, heads=2)(torch.zeros(3, 16, dtype=torch.long)).shape
    torch.Size([3, 16, 20])
    """

    scale_invariant: tuple[str, ...] = ()

    def __init__(self, vocab: int, context: int, dim: int = 128, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab, dim)
        self.position = nn.Embedding(context, dim)
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(layers)))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)
        # GPT-2's initialization: small normal weights keep the first losses near log(vocab).
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.head(self.ln(self.blocks(self.token(ids) + self.position(positions))))
