"""A sweep's output folder: ``sweep.toml`` and ``sweep.json`` (the config and where its storage is), and the
folder of each trial that keeps files, ``RUN_DIR/trials/ARM/NNNN``.

``weightdecay report RUN_DIR`` and ``weightdecay dashboard RUN_DIR`` find the storage through ``sweep.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from weightdecay._io import atomic_write
from weightdecay.errors import UserError
from weightdecay.sweeps.spec import SweepConfig

__all__ = ["write_run_dir", "read_run_dir", "trial_dir"]


def write_run_dir(out_dir: Path, config: SweepConfig, storage_url: str) -> None:
    """Keep the config and the storage address beside the results, so ``weightdecay report RUN_DIR`` finds them."""
    atomic_write(out_dir / "sweep.toml", config.source)
    atomic_write(out_dir / "sweep.json", json.dumps({"name": config.name, "storage": storage_url,
                                                     "config": config.to_dict()}, indent=2))


def read_run_dir(run_dir: str | Path) -> dict[str, Any]:
    """The ``sweep.json`` a sweep wrote into its output folder."""
    path = Path(run_dir) / "sweep.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{run_dir}: not a sweep output folder ({path.name}: {exc}); give the --out folder of "
                        f"`weightdecay sweep`, or a storage URL with --study") from None


def trial_dir(run_dir: str | Path, arm_name: str, number: int) -> Path:
    """``RUN_DIR/trials/ARM/NNNN``: where trial ``number`` of an arm runs (the arm's name made file-safe)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", arm_name).strip("-") or "arm"
    return Path(run_dir) / "trials" / safe / f"{number:04d}"
