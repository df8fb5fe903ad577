"""``weightdecay monitor-report``: a monitor's log as a self-contained HTML page, flags on top.

    weightdecay monitor-report runs/monitor.jsonl -o runs/monitor.html

The log is what ``Monitor.to_jsonl`` (or ``to_csv``) wrote, or ``weightdecay train TASK --monitor LOG``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from weightdecay.errors import UserError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    page = subparsers.add_parser("monitor-report", help="an HTML page of a monitor log: flags, per-layer curves "
                                                        "against their predictions",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    page.add_argument("log", help="the monitor's .jsonl (.jsonl.gz: a sweep trial's) or .csv file")
    page.add_argument("-o", "--output", help="the page to write (default: LOG with .html)")
    page.add_argument("--title", help="the page's title (default: the log's file name)")
    page.add_argument("--max-layers", type=_positive_int, default=8, help="tensors drawn, at most (default 8)")
    page.add_argument("--figures", metavar="DIR", help="also write the page's figures to DIR as PNG files")
    page.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from weightdecay.monitors import read_records, summarize
    from weightdecay.reports.monitor_page import write_monitor_page

    log = Path(args.log)
    records = read_records(log)
    if not records:
        raise UserError(f"{log} holds no records: the monitor recorded no step; attach it with "
                        f"monitor.attach(optimizer, model) before training, run at least Monitor(every=N)'s N "
                        f"steps, then save with monitor.to_jsonl(path)")
    output = Path(args.output) if args.output else log.with_suffix(".html")
    path = write_monitor_page(records, output, title=args.title or log.stem, max_layers=args.max_layers)
    summary = summarize(records)
    print(path)
    if args.figures:
        from weightdecay._io import atomic_write
        from weightdecay.reports.monitor_page import chosen_layers, monitor_figures

        for name, png in monitor_figures(records, chosen_layers(summary, args.max_layers)).items():
            print(atomic_write(Path(args.figures) / f"{log.stem}-{name}.png", png))
    print(f"{len(summary.flags)} flag{'s' if len(summary.flags) != 1 else ''} over {summary.steps} steps"
          + "".join(f"\n- {s}" for s in summary.sentences))
    return 0
