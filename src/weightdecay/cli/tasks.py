"""``weightdecay tasks`` and ``weightdecay train``: the training tasks on the command line.

    weightdecay tasks
    weightdecay train digits-mlp --optimizer adamw --decay paper --lr 3e-3 --weight-decay 0.01 --epochs 20
    weightdecay train fashion-cnn --lr 1e-3 --weight-decay 0.05 --option batch_norm=false --json
    weightdecay train wine-softmax --import examples/custom_task.py --lr 1e-2 --weight-decay 0.1
    weightdecay train digits-mlp --decay paper --schedule sgdr --normalized-wd 0.05   # AdamWR

Progress goes to stderr, the metrics to stdout (a JSON object with ``--json``); bad input is one line on stderr
and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from weightdecay.decay import MODE_NAMES
from weightdecay.errors import UserError
from weightdecay.schedules import SCHEDULE_HELP
from weightdecay.optim.registry import OPTIMIZERS, get_optimizer
from weightdecay.sweeps.arms import Arm, train_config, unused_optimizer_options
from weightdecay.tasks import get_task, list_tasks


def register(subparsers: argparse._SubParsersAction) -> None:
    listing = subparsers.add_parser("tasks", help="list the training tasks and whether their data is present",
                                    description="The training tasks, whether their data is on this machine, and "
                                                "how to get it if not.")
    listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    _add_import_option(listing)
    listing.set_defaults(func=list_handler)

    train = subparsers.add_parser(
        "train", help="train one task once and print its metrics",
        description="Train TASK once with one optimizer configuration; progress on stderr, metrics on stdout.")
    train.add_argument("task", metavar="TASK", help="a task name (see `weightdecay tasks`)")
    train.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="adamw",
                       help="an optimizer of the registry (default adamw)")
    train.add_argument("--decay", choices=MODE_NAMES, default="torch",
                       help="the weight-decay convention (default torch, PyTorch's AdamW)")
    train.add_argument("--lr", type=float, help="peak learning rate (default: the task's suggestion)")
    train.add_argument("--weight-decay", type=float, help="λ in the --decay convention (default: the task's "
                                                          "suggestion)")
    train.add_argument("--schedule", default="cosine", metavar="SCHEDULE",
                       help="learning-rate schedule, stepped per batch (default cosine): "
                            + "; ".join(f"{name}: {sentence}" for name, sentence in SCHEDULE_HELP.items())
                            + " (options via --option schedule_options={...})")
    train.add_argument("--wd-schedule", metavar="SCHEDULE", default=None,
                       help="let λ follow a schedule too, λ_k = λ·η(k) (any name of --schedule; it reads the "
                            "schedule_options it takes)")
    train.add_argument("--normalized-wd", type=float, metavar="LAMBDA_NORM", default=None,
                       help="normalized weight decay instead of --weight-decay: λ = λ_norm·sqrt(b/(B·T)) per step "
                            "in paper units, T the epochs or, under --schedule sgdr, the current restart period "
                            "(AdamWR); --decay paper or torch")
    train.add_argument("--epochs", type=int, help="epochs (default: the task's)")
    train.add_argument("--batch-size", type=int, help="batch size (default: the task's)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--momentum", type=float, help="momentum, for the optimizers that take one (default: the "
                                                      "optimizer's, 0.9 for sgdw)")
    train.add_argument("--cautious", action="store_true",
                       help="cautious weight decay: decay only where the update and the weight agree in sign")
    train.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="a task option, VALUE read as JSON when it parses (train_subset=2000, "
                            "batch_norm=false, channels=[16,32]); repeatable")
    train.add_argument("--diagnostics", action="store_true", help="collect per-layer norms and rotations")
    train.add_argument("--monitor", metavar="LOG", help="watch the run with weightdecay.Monitor and write its "
                                                         "records to LOG (.jsonl, or .csv); see monitor-report")
    train.add_argument("--monitor-every", type=int, default=10, metavar="N", help="record every N-th step "
                                                                                   "(default 10)")
    train.add_argument("--json", action="store_true", help="print one JSON object")
    train.add_argument("--quiet", action="store_true", help="no progress on stderr")
    train.add_argument("--threads", type=int, help="torch intra-op threads (default torch's; 1 is much faster "
                                                    "when other processes share the cores)")
    _add_import_option(train)
    train.set_defaults(func=train_handler)


def _monitors(task: Any, args: argparse.Namespace) -> list[Any]:
    """``[Monitor(every=N)]`` for ``--monitor``, refused for a task whose ``run`` takes no monitors."""
    if args.monitor is None:
        return []
    if args.monitor_every < 1:
        raise UserError(f"--monitor-every must be >= 1, got {args.monitor_every}")
    import inspect

    if "monitors" not in inspect.signature(task.run).parameters:
        raise UserError(f"Task {task.name!r} cannot be monitored: its run(config, progress) takes no monitors; "
                        "add a monitors=() argument and pass it on to weightdecay.tasks.fit")
    from weightdecay.monitors import Monitor

    return [Monitor(every=args.monitor_every)]


def _add_import_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE_OR_FILE",
                        help="import a module or .py file first, so the tasks it registers are known; repeatable")


def import_user_tasks(items: list[str]) -> None:
    """Import each module name or ``.py`` file, running its ``register_task`` calls."""
    for item in items:
        path = Path(item)
        if item.endswith(".py"):
            if not path.is_file():
                raise UserError(f"--import {item}: no such file")
            spec = importlib.util.spec_from_file_location(f"weightdecay_user_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # the user's file: a syntax error or anything it raises is bad input
                del sys.modules[spec.name]
                raise UserError(f"--import {item}: {_one_line(exc)}") from None
        else:
            try:
                importlib.import_module(item)
            except ImportError as exc:
                raise UserError(f"--import {item}: {exc}; pass an importable module or a .py file") from None
            except Exception as exc:
                raise UserError(f"--import {item}: {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    """``SyntaxError: invalid syntax (bad.py, line 3)``: an exception as one line, for the one-line error."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def list_handler(args: argparse.Namespace) -> int:
    import_user_tasks(args.imports)
    rows = []
    for task in list_tasks():
        present, how = task.available()
        rows.append({"name": task.name, "data": "yes" if present else "no", "description": task.description,
                     "how_to_get": how, "metric": task.metric})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'TASK':<{width}}  DATA  DESCRIPTION")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['data']:<4}  {r['description']}")
        if r["data"] == "no" or r["how_to_get"]:
            label = "to get it" if r["data"] == "no" else "source"
            print(f"{'':<{width}}        {label}: {r['how_to_get']}")
    return 0


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["train_subset=2000", "batch_norm=false"]`` → ``{"train_subset": 2000, "batch_norm": False}``."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"--option {item!r} is not KEY=VALUE (e.g. --option train_subset=2000)")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def _finite_or_none(value: Any) -> Any:
    """JSON has no inf/NaN: a diverged run's metrics are written as null (``diverged`` says why)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def train_handler(args: argparse.Namespace) -> int:
    import_user_tasks(args.imports)
    task = get_task(args.task)
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    if args.normalized_wd is not None and args.weight_decay is not None:
        raise UserError("--normalized-wd replaces --weight-decay (λ_norm sets λ every step); pass one of them")
    lr = args.lr if args.lr is not None else getattr(task, "suggested_lr", None)
    weight_decay = next((v for v in (args.normalized_wd, args.weight_decay) if v is not None),
                        getattr(task, "suggested_weight_decay", None))
    if lr is None or weight_decay is None:
        raise UserError(f"Task {task.name!r} suggests no defaults: pass --lr and --weight-decay")
    # An option the chosen optimizer does not read would be dropped silently: refuse it instead.
    given = {"momentum": args.momentum}
    for key, users in unused_optimizer_options(args.optimizer, [k for k, v in given.items() if v is not None]):
        raise UserError(f"--{key} applies to --optimizer {', '.join(users)} only, not {args.optimizer}; drop it or "
                        f"pass --optimizer {users[0]}")
    options = {"cautious": True} if args.cautious else {}
    # momentum and betas default to the optimizer's registry row (Muon's 0.95, Lion's (0.9, 0.99)), not to Arm's
    shared = {k: v for k, v in get_optimizer(args.optimizer).defaults.items() if k in ("momentum", "betas")}
    if args.momentum is not None:
        shared["momentum"] = args.momentum
    arm = Arm(name="train", optimizer=args.optimizer, decay=args.decay, weight_decay=(weight_decay,),
              wd_schedule=args.wd_schedule, normalized_wd=args.normalized_wd is not None,
              optimizer_options=options, **shared)
    config = train_config(arm, lr=lr, weight_decay=weight_decay, seed=args.seed, schedule=args.schedule,
                          epochs=args.epochs, batch_size=args.batch_size,
                          extra=parse_options(args.option)).with_(diagnostics=args.diagnostics)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"{task.name}: epoch {done}/{total} ({time.perf_counter() - started:.1f} s)", file=sys.stderr,
                  flush=True)

    monitors = _monitors(task, args)
    result = task.run(config, progress=progress, **({"monitors": monitors} if monitors else {}))
    # The clock of the progress lines (data loading and model building included), not the task's own training time.
    seconds = time.perf_counter() - started
    if monitors:
        log = Path(args.monitor)
        (monitors[0].to_csv if log.suffix == ".csv" else monitors[0].to_jsonl)(log)
        flags = monitors[0].summary().flags
        print(f"{task.name}: monitor log {log} ({len(flags)} flag{'s' if len(flags) != 1 else ''}; "
              f"weightdecay monitor-report {log})", file=sys.stderr)
    resolve = getattr(task, "resolve", None)
    if callable(resolve):  # show the task's default epochs and batch size, not "None"
        config = resolve(config)[0]
    if args.json:
        payload = {"task": task.name, "config": config.to_dict(), **result.to_dict()}
        if not args.diagnostics:
            payload.pop("diagnostics", None)
        print(json.dumps(_finite_or_none(payload), indent=2))
        return 0
    print(f"task       {task.name}")
    wd = f"normalized_wd={config.weight_decay:g}" if config.normalized_wd else f"weight_decay={config.weight_decay:g}"
    wd += f" wd_schedule={config.wd_schedule}" if config.wd_schedule else ""
    print(f"config     {config.optimizer} decay={config.decay} lr={config.lr:g} {wd}"
          f" schedule={config.schedule} epochs={config.epochs or 'default'}"
          f" batch_size={config.batch_size or 'default'} seed={config.seed}")
    if result.diverged:
        why = f": {result.diverged_reason}" if result.diverged_reason else ""
        print(f"diverged   yes, after {len(result.history)} finished epoch(s){why}")
    for name, value in result.metrics.items():
        print(f"{name:<10} {value:.6g}")
    print(f"seconds    {seconds:.1f}")
    return 0
