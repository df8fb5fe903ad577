"""``weightdecay convert`` and ``weightdecay advise``: the rules of :mod:`weightdecay.rules` on the command line.

    weightdecay convert --lr 1e-3 --weight-decay 0.01 --from torch --to paper
    weightdecay advise --lr 1e-3 --weight-decay 0.1 --convention torch --batch-size 128 --dataset-size 50000 \\
        --epochs 100

Plain-text tables for people, ``--json`` for machines; bad input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from typing import Any

from weightdecay.decay import get_mode
from weightdecay.errors import UserError
from weightdecay.rules.equilibrium import rotation_kind
from weightdecay.rules import (CONVENTION_NAMES, OPTIMIZERS, Conversion, advise, canonical_dtype, convert, convert_all,
                               get_convention, rounding_warning)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _nonnegative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _count(text: str) -> int:
    value = _positive(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text}")
    return int(value)


def _g(x: float) -> str:
    return f"{x:.6g}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text columns, left-aligned, two spaces apart."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _schedule_note(c: Conversion, lr: float) -> str:
    return "any lr schedule" if c.exact else f"only at lr_t={_g(lr)}"


def _conversion_table(rows: list[Conversion], lr: float) -> str:
    return _table(["convention", "weight_decay", "decay mode", "equal at", "how to pass it"],
                  [[c.target, _g(c.weight_decay), c.mode, _schedule_note(c, lr),
                    c.usage.format(wd=_g(c.weight_decay))] for c in rows])


def _why_skipped(name: str, source: str) -> str:
    """A few words on why ``convert`` left a convention out; the library's message has the full story."""
    conv = get_convention(name)
    if {conv.part, get_convention(source).part} == {"muon", "adamw"}:
        return f"the λ of Muon's other part, {conv.part}"
    mode = get_mode(conv.mode)
    if not mode.decoupled:
        return "coupled L2: no decoupled setting equals it under Adam"
    if mode.statistic is not None:
        return f"needs --{mode.statistic.name.replace('_', '-')} from your run"
    if name == "keras-adamw":
        return "needs --batch-size and --total-steps, or --dataset-size and --epochs"
    return "needs --batch-size, --dataset-size and --epochs"


def _sizes(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in ("batch_size", "dataset_size", "epochs", "total_steps")
            if getattr(args, k, None) is not None}


def _convert(args: argparse.Namespace) -> int:
    get_convention(args.source)
    dtype = canonical_dtype(args.dtype)
    sizes = _sizes(args)
    peak = args.peak_lr if args.peak_lr is not None else args.lr
    if args.target is not None:
        c = convert(args.weight_decay, args.source, args.target, lr=args.lr, peak_lr=args.peak_lr,
                    mean_v_hat=args.mean_v_hat, **sizes)
        warning = rounding_warning(c.shrink, dtype)
        if args.json:
            print(json.dumps({"lr": args.lr, "peak_lr": peak, "weight_decay": args.weight_decay, **asdict(c),
                              "dtype": dtype, "warnings": [warning] if warning else []}))
            return 0
        print(f"weight_decay={_g(args.weight_decay)} ({c.source}) = {_g(c.weight_decay)} ({c.target}) "
              f"at lr={_g(args.lr)}, peak_lr={_g(peak)}")
        print(f"  per-step shrink s_t = {_g(c.shrink)}; equal under "
              + ("any lr schedule with this peak_lr" if c.exact else f"lr_t = {_g(args.lr)} only"))
        print(f"  {c.usage.format(wd=_g(c.weight_decay))}")
        if c.part in ("muon", "adamw"):
            print(f"  This is the λ of Muon's {c.part} part: "
                  + ("the matrices Muon updates." if c.part == "muon" else "the tensors AdamW updates, at its lr."))
        if c.note:
            print(f"  {c.note}")
        if warning:
            print(f"warning: {warning}")
        return 0
    rows, skipped = convert_all(args.weight_decay, args.source, lr=args.lr, peak_lr=args.peak_lr,
                                mean_v_hat=args.mean_v_hat, **sizes)
    warning = rounding_warning(rows[0].shrink, dtype)
    if args.json:
        print(json.dumps({"lr": args.lr, "peak_lr": peak, "weight_decay": args.weight_decay, "source": args.source,
                          "conversions": [asdict(c) for c in rows], "skipped": skipped, "dtype": dtype,
                          "warnings": [warning] if warning else []}))
        return 0
    print(f"weight_decay={_g(args.weight_decay)} ({args.source}) at lr={_g(args.lr)}, peak_lr={_g(peak)}, "
          f"per-step shrink s_t = {_g(rows[0].shrink)}")
    print()
    print(_conversion_table(rows, args.lr))
    if skipped:
        print()
        print("not shown: " + "; ".join(f"{name} ({_why_skipped(name, args.source)})" for name in skipped))
    if warning:
        print()
        print(f"warning: {warning}")
    return 0


def _advise(args: argparse.Namespace) -> int:
    # β1 is Adam's and momentum SGD's: refuse the one that does not apply rather than ignore it.
    adam = rotation_kind(args.optimizer) == "adam"
    if adam and args.momentum is not None:
        raise UserError("--momentum is for --optimizer sgd or sgdw; AdamW's rotation uses --beta1")
    if not adam and args.beta1 is not None:
        raise UserError(f"--beta1 is for --optimizer adamw; {args.optimizer}'s rotation uses --momentum")
    args.beta1 = 0.9 if args.beta1 is None else args.beta1
    args.momentum = 0.9 if args.momentum is None else args.momentum
    a = advise(lr=args.lr, weight_decay=args.weight_decay, convention=args.convention, batch_size=args.batch_size,
               dataset_size=args.dataset_size, epochs=args.epochs, optimizer=args.optimizer, peak_lr=args.peak_lr,
               beta1=args.beta1, momentum=args.momentum, fine_tuning=args.fine_tuning,
               layer_decay=args.layer_decay, depth=args.depth, dtype=args.dtype)
    if args.json:
        print(json.dumps(a.to_dict()))
        return 0
    detail = f"β1={args.beta1}" if adam else f"momentum={args.momentum}"
    print(f"{a.optimizer} ({detail}), weight_decay={_g(a.weight_decay)} ({a.convention}), lr={_g(a.lr)}, "
          f"peak_lr={_g(a.peak_lr)}, batch {a.batch_size}, {a.dataset_size} examples, {_g(a.epochs)} epochs "
          f"(≈{a.total_steps:.0f} steps)")
    print()
    print(_conversion_table(a.conversions, a.lr))
    print()
    print(_table(["quantity", "value", "meaning"], [
        ["s = lr·λ", _g(a.shrink), "per-step shrink of the weights (torch units)"],
        ["τ_iter", _g(a.tau_iter), "EMA timescale in steps, 1/(lr·λ)"],
        ["τ_epoch", _g(a.tau_epoch), "EMA timescale in epochs, τ_iter·b/B"],
        ["λ_norm", _g(a.weight_decay_norm),
         "normalized weight decay, λ_paper/sqrt(b/(B·T)); best ≈ 0.025–0.05 training from scratch"],
        ["rotation", _g(a.rotation), "expected equilibrium angle per step of a normalized weight (radians)"],
    ]))
    if a.layers:
        print()
        print(_table(["layer", "lr_scale", "s, same λ", "s, follows lr", "s, fixed"],
                     [[str(r["layer"]), _g(r["lr_scale"]), _g(r["shrink_same_lambda"]), _g(r["shrink_follows_lr"]),
                       _g(r["shrink_fixed"])] for r in a.layers]))
        print(a.layer_note)
    print()
    if a.warnings:
        for w in a.warnings:
            print(f"warning: {w}")
    else:
        print("No warnings: τ_epoch lies between one epoch and the run's length.")
    if a.suggestion:
        print(f"fine-tuning: {a.suggestion}")
    if a.see_also:
        print(a.see_also)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``convert`` and ``advise`` to the ``weightdecay`` command."""
    conventions = ", ".join(CONVENTION_NAMES)

    p = subparsers.add_parser(
        "convert", help="the same weight decay in another convention or framework",
        description="Write a weight decay in another convention (same per-step shrink s_t). Without --to, in all "
                    f"of them. Conventions: {conventions}.")
    p.add_argument("--weight-decay", type=_nonnegative, required=True, help="the value in the --from convention")
    p.add_argument("--lr", type=_positive, required=True, help="learning rate lr_t where both must agree (the peak)")
    p.add_argument("--from", dest="source", required=True, metavar="CONVENTION", help="convention of the value")
    p.add_argument("--to", dest="target", metavar="CONVENTION", help="convention of the answer (default: all)")
    p.add_argument("--peak-lr", type=_positive, help="reference lr of paper/corrected (default: --lr)")
    p.add_argument("--batch-size", type=_count, help="for normalized and keras-adamw")
    p.add_argument("--dataset-size", type=_count, help="for normalized and keras-adamw")
    p.add_argument("--epochs", type=_positive, help="for normalized and keras-adamw")
    p.add_argument("--total-steps", type=_count, help="keras-adamw's total_iterations_wd")
    p.add_argument("--mean-v-hat", type=_positive, help="mean of Adam's v̂ in your run, for 'stable'")
    p.add_argument("--dtype", default="float32", help="the weights' format (float32, bfloat16, float16): warn when "
                   "s_t is below its resolution (default float32)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_convert)

    a = subparsers.add_parser(
        "advise", help="one setting in every convention, its timescales and warnings",
        description="Show a weight-decay setting in every convention and framework with its EMA timescales, "
                    "normalized weight decay and equilibrium rotation, and warn when it looks implausible.")
    a.add_argument("--lr", type=_positive, required=True, help="(peak) learning rate")
    a.add_argument("--weight-decay", type=_nonnegative, required=True, help="λ in --convention")
    a.add_argument("--convention", default="torch", help=f"convention of the value (default torch): {conventions}")
    a.add_argument("--batch-size", type=_count, required=True)
    a.add_argument("--dataset-size", type=_count, required=True, help="training examples")
    a.add_argument("--epochs", type=_positive, required=True)
    a.add_argument("--optimizer", default="adamw", help=f"one of {', '.join(OPTIMIZERS)} (default adamw)")
    a.add_argument("--peak-lr", type=_positive, help="reference lr of paper/corrected (default: --lr)")
    a.add_argument("--beta1", type=_nonnegative, default=None, help="Adam's β1, for the rotation (default 0.9)")
    a.add_argument("--momentum", type=_nonnegative, default=None,
                   help="SGD momentum, for the rotation (default 0.9)")
    a.add_argument("--fine-tuning", action="store_true",
                   help="the run starts from pretrained weights: a provisional weight decay, its rule named")
    a.add_argument("--layer-decay", type=_positive, help="layer-wise lr decay factor (timm/BEiT), with --depth")
    a.add_argument("--depth", type=_count, help="blocks in the model, for --layer-decay")
    a.add_argument("--dtype", default="float32", help="the weights' format (float32, bfloat16, float16): warn when "
                   "s = lr·λ is below its resolution (default float32)")
    a.add_argument("--json", action="store_true", help="print JSON instead of text")
    a.set_defaults(func=_advise)
