"""docs/trainers.md runs as written, and prints what its text says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "trainers.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_python_blocks_in_docs_trainers_md_run(capsys, tmp_path, monkeypatch):
    pytest.importorskip("transformers")  # the Trainer block
    pytest.importorskip("accelerate")
    monkeypatch.chdir(tmp_path)  # a block may write files
    blocks = _blocks()
    assert len(blocks) >= 1
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "__docs__"})  # noqa: S102 - our own documentation
    out = capsys.readouterr().out.splitlines()
    layer_lines = [line for line in out if line.startswith("lr_scale")]
    shrinks = [float(line.rsplit("s_t", 1)[1]) for line in layer_lines]
    assert shrinks[:-1] == [1e-4] * (len(shrinks) - 1) and shrinks[-1] == 5e-5  # the head: wd_mult 0.5
    assert "muon λ [0.1] adamw λ [0.001, 0.0]" in out
    assert "after doubling Muon's lr: 0.1 0.001" in out
    loss = float(next(line for line in out if line.startswith("schedule-free eval loss")).split()[-1])
    assert loss < 0.05  # the target's variance is 5: the averaged weights fit it
    assert "warned: True kept peak_lr: 0.001" in out
    assert "rebased from [0.001] to 0.002 lr 0.002 base 0.002" in out
    line = next(line for line in out if line.startswith("Trainer with weightdecay.AdamW"))
    assert "decay=paper" in line and 0 < float(line.rsplit(" ", 1)[1]) <= 0.05  # s_t = η_t·λ ≤ λ
    line = next(line for line in out if line.startswith("distance from the pretrained weights"))
    toward, zero = (float(part.split()[-1]) for part in line.split(":")[1].split(","))
    assert toward < zero  # decay toward the pretrained weights keeps the fine-tuned model nearer them
