"""``weightdecay transfer``: carry a tuned weight decay to a new lr, batch size, dataset size, run length or width.

    weightdecay transfer --weight-decay 0.1 --lr 1e-3 2e-3                      # torch: 0.05
    weightdecay transfer --weight-decay 0.1 --lr 1e-3 --rule keep-tau-epoch --dataset-size 50000 100000 --json
    weightdecay transfer --weight-decay 0.1 --lr 0.02 0.04 --adamw-weight-decay 0.01 --adamw-lr 1e-3   # Muon's two λs

Each quantity is ``BEFORE AFTER``, or one number when it does not change. The rules are those of
:func:`weightdecay.rules.transfer`; bad input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from weightdecay.cli.rules import _g, _nonnegative, _positive
from weightdecay.errors import UserError
from weightdecay.rules import CONVENTION_NAMES, TRANSFER_RULES, transfer, transfer_muon

__all__ = ["register"]

_QUANTITIES = ("lr", "batch_size", "dataset_size", "epochs", "width")


def register(subparsers: argparse._SubParsersAction) -> None:
    rules = "; ".join(f"{name}: {sentence}" for name, sentence in TRANSFER_RULES.items())
    p = subparsers.add_parser(
        "transfer", help="a tuned weight decay carried to a new lr, batch, dataset size, epochs or width",
        description="The weight decay for a changed setup, in the same convention, under a named rule. Give each "
                    f"quantity as BEFORE AFTER (or one number if unchanged). Rules: {rules}.")
    p.add_argument("--weight-decay", type=_nonnegative, required=True, help="the tuned λ, in --convention")
    p.add_argument("--lr", type=_positive, nargs="+", required=True, metavar="LR",
                   help="peak learning rate: BEFORE [AFTER]")
    p.add_argument("--rule", default="keep-lr-wd", choices=list(TRANSFER_RULES),
                   help="what stays fixed (default keep-lr-wd, the per-step decay lr·λ)")
    p.add_argument("--convention", default="torch", metavar="CONVENTION",
                   help=f"convention of the value and of the answer (default torch): {', '.join(CONVENTION_NAMES)}")
    for name, what in (("batch-size", "batch size"), ("dataset-size", "training examples"),
                       ("epochs", "epochs (of the run, or of a restart period)"),
                       ("width", "fan-in; the new lr follows μP, lr ∝ 1/fan_in")):
        p.add_argument(f"--{name}", type=_positive, nargs="+", metavar="N", help=f"{what}: BEFORE [AFTER]")
    p.add_argument("--adamw-weight-decay", type=_nonnegative,
                   help="with Muon: the λ of its AdamW part (--weight-decay is then the Muon part's)")
    p.add_argument("--adamw-lr", type=_positive, nargs="+", metavar="LR", help="the AdamW part's lr: BEFORE [AFTER]")
    p.add_argument("--adamw-convention", metavar="CONVENTION", help="the AdamW part's convention (default --convention)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_transfer)


def _pair(name: str, values: list[float] | None) -> float | tuple[float, float] | None:
    if values is None:
        return None
    if len(values) > 2:
        raise UserError(f"--{name.replace('_', '-')} takes BEFORE [AFTER], got {len(values)} numbers")
    return values[0] if len(values) == 1 else (values[0], values[1])


def _transfer_muon(args: argparse.Namespace, pairs: dict) -> int:
    if args.adamw_weight_decay is None or args.adamw_lr is None:
        raise UserError("Muon's two λs need both --adamw-weight-decay and --adamw-lr (the AdamW part's lr)")
    parts = transfer_muon(args.weight_decay, args.adamw_weight_decay, adamw_lr=_pair("adamw_lr", args.adamw_lr),
                          convention=args.convention, adamw_convention=args.adamw_convention, rule=args.rule, **pairs)
    if args.json:
        print(json.dumps({part: asdict(t) for part, t in parts.items()}))
        return 0
    print(f"rule          {args.rule}: {TRANSFER_RULES[args.rule]}")
    for part, before_wd, before_lr in (("muon", args.weight_decay, args.lr[0]),
                                       ("adamw", args.adamw_weight_decay, args.adamw_lr[0])):
        t = parts[part]
        print(f"{part:<6} lr    {_g(before_lr)} -> {_g(t.lr)}; weight_decay {_g(before_wd)} -> {_g(t.weight_decay)} "
              f"({t.convention}); s {_g(t.shrink)} per step at the peak")
    return 0


def _transfer(args: argparse.Namespace) -> int:
    pairs = {name: _pair(name, getattr(args, name)) for name in _QUANTITIES}
    if args.adamw_weight_decay is not None or args.adamw_lr is not None or args.adamw_convention is not None:
        return _transfer_muon(args, pairs)
    t = transfer(args.weight_decay, rule=args.rule, convention=args.convention, **pairs)
    before_lr = args.lr[0]
    if args.json:
        given = {name: (list(v) if isinstance(v, tuple) else v) for name, v in pairs.items() if v is not None}
        print(json.dumps({"from": {"weight_decay": args.weight_decay, "lr": before_lr}, "given": given,
                          **asdict(t)}))
        return 0
    print(f"rule          {t.rule}: {TRANSFER_RULES[t.rule]}")
    print(f"lr            {_g(before_lr)} -> {_g(t.lr)}")
    print(f"weight_decay  {_g(args.weight_decay)} -> {_g(t.weight_decay)} ({t.convention})")
    print(f"shrink s      {_g(t.shrink)} per step at the peak lr (lr·λ in torch units)")
    return 0
