"""PyTorch's CIFAR-10 tutorial loop, with ``weightdecay.AdamW`` dropped in for ``torch.optim.AdamW``.

The tutorial's model, data, normalization (mean 0.5, std 0.5), batch 32, 10 epochs and
``AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2)``, every parameter decayed. Two things change: the
optimizer line (``decay="torch"`` is the default, so the numbers are torch's, bit for bit), and three lines that
say what ``(lr, weight_decay)`` means before training. The data come from your own ``cifar-10-batches-py``
copy through the project's loader, because the torchvision wheels on PyPI are CUDA builds that do not import
beside a CPU torch; the torchvision lines they replace are kept in a comment below.

Usage:
    python examples/tutorial_cifar10.py --data-dir ~/data/cifar-10-batches-py     # the tutorial's run
    python examples/tutorial_cifar10.py --data-dir DIR --epochs 1 --limit 2000    # a quick look

The same run is a task preset: ``weightdecay train cifar10-tutorial --lr 1e-4 --weight-decay 1e-2
--schedule constant --option data_dir=DIR``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import weightdecay
from weightdecay.data import load_cifar10
from weightdecay.rules import advise, convert

LR, WEIGHT_DECAY = 1e-4, 1e-2  # the tutorial's optim.AdamW(net.parameters(), lr=1e-4, weight_decay=1e-2)
BATCH_SIZE, EPOCHS = 32, 10  # the tutorial's


# The tutorial loads the data with torchvision; with a torchvision build that matches your torch, these lines
# do what CIFAR10Pickles and loaders() do here:
#
#   import torchvision, torchvision.transforms as transforms
#   transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
#   trainset = torchvision.datasets.CIFAR10(root="./data", train=True, download=True, transform=transform)
#   trainloader = torch.utils.data.DataLoader(trainset, batch_size=32, shuffle=True)
#   testset = torchvision.datasets.CIFAR10(root="./data", train=False, download=True, transform=transform)
#   testloader = torch.utils.data.DataLoader(testset, batch_size=32, shuffle=False)
class CIFAR10Pickles(Dataset):
    """uint8 images from the project's loader, turned into tensors one at a time as torchvision's transform does:
    ``ToTensor`` (x/255) then ``Normalize((0.5,)*3, (0.5,)*3)`` ((x - 0.5)/0.5)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(np.array(self.images[i], dtype=np.float32)).div_(255.0)
        return x.sub_(0.5).div_(0.5), int(self.labels[i])


def loaders(data_dir: str | None, batch_size: int = BATCH_SIZE, limit: int | None = None,
            seed: int = 0) -> tuple[DataLoader, DataLoader]:
    ds = load_cifar10(data_dir)
    trainset = CIFAR10Pickles(ds.train_x[:limit], ds.train_y[:limit])
    testset = CIFAR10Pickles(ds.test_x[:limit], ds.test_y[:limit])
    shuffle = torch.Generator().manual_seed(seed)
    return (DataLoader(trainset, batch_size=batch_size, shuffle=True, generator=shuffle),
            DataLoader(testset, batch_size=batch_size, shuffle=False))


class Net(nn.Module):
    """The tutorial's model: two conv blocks (32, 64 channels) and a 128-unit head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * 8 * 8, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def train(trainloader: DataLoader, testloader: DataLoader, *, epochs: int = EPOCHS, seed: int = 0,
          optimizer_class: type = weightdecay.AdamW, log=print) -> tuple[Net, float]:
    """The tutorial's loop; returns the trained model and its test accuracy."""
    torch.manual_seed(seed)
    net = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = optimizer_class(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)  # was: optim.AdamW(...)

    # The three lines: what this (lr, weight_decay) means. τ_epoch is the weights' memory in epochs (1/(lr·λ)
    # steps); the paper's convention gives the same decay with a λ that does not move when the lr does.
    advice = advise(lr=LR, weight_decay=WEIGHT_DECAY, batch_size=trainloader.batch_size,
                    dataset_size=len(trainloader.dataset), epochs=epochs)
    log(f"τ_epoch = {advice.tau_epoch:.4g} epochs for a {epochs}-epoch run; " + " ".join(advice.warnings[:1]))
    log(f"paper units: weightdecay.AdamW(..., decay='paper', weight_decay="
        f"{convert(WEIGHT_DECAY, 'torch', 'paper', lr=LR).weight_decay:.3g}) decays the same")

    for epoch in range(epochs):
        running_loss = 0.0
        for i, (inputs, labels) in enumerate(trainloader):
            optimizer.zero_grad()
            loss = criterion(net(inputs), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            if i % 200 == 199:
                log(f"[{epoch + 1}, {i + 1:5d}] loss: {running_loss / 200:.3f}")
                running_loss = 0.0

    correct = total = 0
    with torch.no_grad():
        for images, labels in testloader:
            predicted = net(images).argmax(dim=1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    log(f"Accuracy of the network on the {total} test images: {100 * correct / total:.1f} %")
    return net, correct / total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="the cifar-10-batches-py directory (default $WEIGHTDECAY_CIFAR10)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs (the tutorial's: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training and test images")
    args = parser.parse_args(argv)
    trainloader, testloader = loaders(args.data_dir, limit=args.limit)
    train(trainloader, testloader, epochs=args.epochs)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except weightdecay.errors.UserError as exc:  # e.g. CIFAR-10 not found: one line, how to get it
        raise SystemExit(f"error: {exc}") from None
