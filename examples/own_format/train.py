"""A training script that knows nothing of weightdecay: it prints its losses in its own format, as nanoGPT's
train.py does (``step 200: train loss 2.1321, val loss 2.1869``), and writes nothing else.

A least-squares model y = X·w trained by AdamW for a few hundred steps; the weight decay matters because the
training set is small and noisy. ``sweep.toml`` beside it sweeps it unmodified, reading the last printed
``val loss`` with a regular expression (docs/own_script.md, "Scripts as they are").
"""

import argparse

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=1e-2)
parser.add_argument("--weight-decay", type=float, default=0.0)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--steps", type=int, default=300)
parser.add_argument("--eval-interval", type=int, default=50)
args = parser.parse_args()

torch.manual_seed(1234)  # the data are the same for every run; the seed varies the initialization
w_true = torch.randn(40)
X_train, X_val = torch.randn(60, 40), torch.randn(500, 40)
y_train = X_train @ w_true + 2.0 * torch.randn(60)
y_val = X_val @ w_true + 2.0 * torch.randn(500)

torch.manual_seed(args.seed)
w = torch.nn.Parameter(0.1 * torch.randn(40))
optimizer = torch.optim.AdamW([w], lr=args.lr, weight_decay=args.weight_decay)


def loss_of(X, y):
    return torch.mean((X @ w - y) ** 2)


for step in range(args.steps + 1):
    if step % args.eval_interval == 0:
        with torch.no_grad():
            print(f"step {step}: train loss {loss_of(X_train, y_train).item():.4f}, "
                  f"val loss {loss_of(X_val, y_val).item():.4f}")
    optimizer.zero_grad()
    loss_of(X_train, y_train).backward()
    optimizer.step()
