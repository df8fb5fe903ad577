"""``weightdecay suggest``: the best weight decay for a run's settings, in its convention, with an interval.

    weightdecay suggest --lr 1e-3 --batch-size 128 --dataset-size 50000 --epochs 100 --convention torch

It prints the value, the interval to sweep, the rule it used and how sure it is (the rule's measured accuracy on
the project's grids, docs/results.md "Claim 9"). From the settings alone for now: a probe run is not part of it
yet.
"""

from __future__ import annotations

import argparse
import json

from weightdecay.cli.rules import _count, _g, _positive
from weightdecay.rules import CONVENTION_NAMES, suggest_weight_decay


def _suggest(args: argparse.Namespace) -> int:
    s = suggest_weight_decay(lr=args.lr, batch_size=args.batch_size, dataset_size=args.dataset_size,
                             epochs=args.epochs, convention=args.convention, peak_lr=args.peak_lr,
                             fine_tuning=args.fine_tuning)
    if args.json:
        print(json.dumps(s.to_dict()))
        return 0
    print(f"weight_decay = {_g(s.weight_decay)} ({s.convention!r} at lr = {_g(s.lr)}); sweep "
          f"{_g(s.low)} … {_g(s.high)}")
    print(f"  run: batch {s.batch_size}, {s.dataset_size} examples, {_g(s.epochs)} epochs (≈{s.total_steps:.0f} "
          f"steps); at this value τ_iter = {_g(s.tau_iter)} steps ({_g(s.tau_iter / s.total_steps)} of the run), "
          f"τ_epoch = {_g(s.tau_epoch)}; the decay alone leaves exp(−T/τ_iter) = {s.run_shrink:.2g} of a weight over "
          f"the run")
    print("  measured: nothing (from the settings alone)" if not s.measured else
          "  measured: " + ", ".join(f"{k} = {_g(v)}" for k, v in s.measured.items()))
    print(f"  rule: {s.rule}")
    print(f"  how sure: {s.confidence}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``suggest`` to the ``weightdecay`` command."""
    p = subparsers.add_parser(
        "suggest", help="the best weight decay for your settings, with an interval and how sure it is",
        description="The best weight decay at your lr, batch size, data set size and run length, in your "
                    "convention, with an interval to sweep, the rule used and its measured accuracy "
                    "(docs/results.md, 'Claim 9').")
    p.add_argument("--lr", type=_positive, required=True, help="(peak) learning rate")
    p.add_argument("--batch-size", type=_count, required=True)
    p.add_argument("--dataset-size", type=_count, required=True, help="training examples")
    p.add_argument("--epochs", type=_positive, required=True)
    p.add_argument("--convention", default="torch",
                   help=f"convention of the answer (default torch): {', '.join(CONVENTION_NAMES)}")
    p.add_argument("--peak-lr", type=_positive, help="reference lr of paper/corrected (default: --lr)")
    p.add_argument("--fine-tuning", action="store_true",
                   help="the run starts from pretrained weights (a provisional, unmeasured rule)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_suggest)
