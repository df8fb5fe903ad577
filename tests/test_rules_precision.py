"""The weights' format in the rules: which shrinks a rounded ``p·(1 - s_t)`` loses, against torch's own rounding,
and the warnings of ``advise`` and ``convert`` (library and command line)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli_in_process as run_here
from weightdecay.errors import UserError
from weightdecay.rules import advise, canonical_dtype, resolution, rounding_warning

# float32 is left out: torch rounds the factor 1 - s_t itself to float32 before multiplying, at these s_t.
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@pytest.mark.parametrize("name", DTYPES)
def test_resolution_is_where_torch_rounds_the_shrink_away(name):
    # The peer: torch's own multiply-and-round on weights of every mantissa in one binade (and of both signs).
    dtype = DTYPES[name]
    p = torch.linspace(1, 2, 4097, dtype=torch.float64)[:-1].to(dtype).unique()
    p = torch.cat([p, -p * 2.0**-7])
    everywhere, somewhere = resolution(name)
    assert torch.equal(p.mul(1 - everywhere * 0.99), p)  # below: every weight rounds back
    some = p.mul(1 - everywhere * 1.01) != p
    assert some.any() and not some.all()  # between: some weights keep it
    assert (p.mul(1 - somewhere * 1.01) != p).all()  # above: every weight moves


def test_advise_warns_for_bfloat16_and_not_float32():
    setting = dict(lr=1e-4, weight_decay=0.1, batch_size=32, dataset_size=3200, epochs=100)
    bf16 = advise(**setting, dtype="bf16")
    assert bf16.dtype == "bfloat16"
    assert any("below bfloat16's resolution" in w and "rounding='compensated'" in w for w in bf16.warnings)
    assert not any("resolution" in w for w in advise(**setting).warnings)
    # s = 2e-3 is above 2^-9 but below 2^-8: part of the decay is lost
    partly = advise(**{**setting, "lr": 2e-2}, dtype="bfloat16")
    assert any("loses part of the decay" in w for w in partly.warnings)


def test_rounding_warning_is_silent_where_the_format_holds_the_shrink():
    assert rounding_warning(1e-3, "float16") is None  # 1e-3 > 2^-11
    assert rounding_warning(0.0, "bfloat16") is None  # no decay, nothing lost
    assert "float16" in rounding_warning(1e-4, "torch.float16")


def test_unknown_dtype_is_refused():
    with pytest.raises(UserError, match="Unknown weight dtype 'int8'"):
        canonical_dtype("int8")


def test_cli_convert_and_advise_take_the_dtype():
    out = run_here("convert", "--lr", "1e-4", "--weight-decay", "0.1", "--from", "torch", "--to", "paper",
                   "--dtype", "bf16")
    assert out.returncode == 0 and "warning: s_t = 1e-05 is below bfloat16's resolution" in out.stdout
    data = json.loads(run_here("convert", "--lr", "1e-4", "--weight-decay", "0.1", "--from", "torch",
                               "--dtype", "bf16", "--json").stdout)
    assert data["dtype"] == "bfloat16" and len(data["warnings"]) == 1
    quiet = run_here("convert", "--lr", "1e-4", "--weight-decay", "0.1", "--from", "torch", "--to", "paper")
    assert "resolution" not in quiet.stdout
    advice = run_here("advise", "--lr", "1e-4", "--weight-decay", "0.1", "--batch-size", "32", "--dataset-size",
                      "3200", "--epochs", "100", "--dtype", "float16")
    assert "below float16's resolution" in advice.stdout
    bad = run_here("advise", "--lr", "1e-4", "--weight-decay", "0.1", "--batch-size", "32", "--dataset-size",
                   "3200", "--epochs", "100", "--dtype", "int8")
    assert bad.returncode == 2 and "Unknown weight dtype" in bad.stderr
