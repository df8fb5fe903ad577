"""Train a small MLP on scikit-learn's handwritten digits: a plain PyTorch script that a sweep drives as it is.

It is written the way training scripts usually are (argparse, a loop, an optimizer); the only line it has for
the sweep is the ``weightdecay.report(...)`` at the end, which prints the JSON line the sweep reads.

Run it by hand:
    python examples/train_script.py --lr 3e-3 --weight-decay 0.1 --decay torch --epochs 10
Sweep lr × weight decay over it (examples/train_script.toml) and write the report:
    weightdecay sweep examples/train_script.toml --out runs/train-script
See docs/own_script.md.
"""

import argparse

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import weightdecay


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--decay", default="torch", choices=weightdecay.MODE_NAMES,
                   help="which weight-decay convention AdamW uses (README, 'The decay conventions')")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def main():
    args = parse_args()
    torch.manual_seed(args.seed)

    # Data: 1797 8×8 images; a fixed 80/20 split (the same for every seed), pixels scaled to [0, 1].
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x, dtype=torch.float32) / 16.0, torch.tensor(y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1234))
    n_val = len(x) // 5
    x_val, y_val, x_train, y_train = x[order[:n_val]], y[order[:n_val]], x[order[n_val:]], y[order[n_val:]]

    model = torch.nn.Sequential(torch.nn.Linear(64, args.hidden), torch.nn.ReLU(),
                                torch.nn.Linear(args.hidden, args.hidden), torch.nn.ReLU(),
                                torch.nn.Linear(args.hidden, 10))
    groups = weightdecay.param_groups(model, weight_decay=args.weight_decay)  # no decay on biases
    optimizer = weightdecay.AdamW(groups, lr=args.lr, decay=args.decay)
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)

    history = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for batch in torch.randperm(len(x_train)).split(args.batch_size):
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(batch)
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = F.cross_entropy(logits, y_val).item()
            val_accuracy = (logits.argmax(1) == y_val).float().mean().item()
        history.append({"epoch": epoch, "train_loss": total / len(x_train), "val_loss": val_loss,
                        "val_accuracy": val_accuracy})
        print(f"epoch {epoch:3d}  train_loss {total / len(x_train):.4f}  val_loss {val_loss:.4f}  "
              f"val_accuracy {val_accuracy:.3f}")

    final = {k: v for k, v in history[-1].items() if k != "epoch"}
    weightdecay.report(final, history=history)  # the line the sweep reads (NaN if training diverged)


if __name__ == "__main__":
    main()
