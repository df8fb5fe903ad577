"""PyTorch's own optimizer test database (``torch.testing._internal.common_optimizers.optim_db``) as an oracle.

For torch.optim.AdamW, Adam and SGD, torch lists the constructor inputs every optimizer must refuse
(``optim_error_inputs_func``: error type and message regex) and the sample kwargs its generic tests run
(``optim_inputs_func``). weightdecay's twins must refuse the same inputs with the same error, and take the same
steps bit for bit on every sample (AdamW in mode ``torch``, ``weightdecay.Adam`` in ``l2``, SGDW in ``l2``).
Importing torch's test utilities needs ``expecttest`` and takes seconds, hence the mark.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import weightdecay

pytest.importorskip("expecttest")
common_optimizers = pytest.importorskip("torch.testing._internal.common_optimizers")
from torch.testing._internal.common_optimizers import OptimizerErrorEnum, optim_db  # noqa: E402

pytestmark = pytest.mark.slow

TWINS = [(torch.optim.AdamW, weightdecay.AdamW, {}), (torch.optim.Adam, weightdecay.Adam, {}),
         (torch.optim.SGD, weightdecay.SGDW, {"decay": "l2"})]


def _info(torch_cls):
    return next(o for o in optim_db if o.optim_cls is torch_cls)


def _error_cases():
    for torch_cls, ours, _ in TWINS:
        for case in _info(torch_cls).optim_error_inputs_func(device="cpu", dtype=torch.float32):
            if case.error_on == OptimizerErrorEnum.CONSTRUCTION_ERROR:
                yield pytest.param(ours, case, id=f"{ours.__name__}-{case.error_regex[:40]}")


@pytest.mark.parametrize("ours, case", list(_error_cases()))
def test_torchs_error_inputs_are_refused_alike(ours, case):
    inputs = case.optimizer_error_input
    if issubclass(case.error_type, Warning):
        with pytest.warns(case.error_type, match=case.error_regex):
            ours(inputs.params, **inputs.kwargs)
    else:
        with pytest.raises(case.error_type, match=case.error_regex):
            ours(inputs.params, **inputs.kwargs)


def _sample_cases():
    for torch_cls, ours, extra in TWINS:
        for sample in _info(torch_cls).optim_inputs_func(device="cpu"):
            yield pytest.param(torch_cls, ours, extra, sample.kwargs, id=f"{ours.__name__}-{sample.desc}")


@pytest.mark.parametrize("torch_cls, ours, extra, kwargs", list(_sample_cases()))
def test_torchs_sample_inputs_step_alike(torch_cls, ours, extra, kwargs):
    def params():
        gen = torch.Generator().manual_seed(0)
        return [torch.randn(5, 3, generator=gen).requires_grad_(), torch.randn(3, generator=gen).requires_grad_()]

    results = []
    for cls, kw in ((torch_cls, kwargs), (ours, {**kwargs, **extra})):
        ps = params()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a sample torch accepts silently is accepted silently here too
            opt = cls(ps, **kw)
        gen = torch.Generator().manual_seed(1)
        for _ in range(4):
            for p in ps:
                p.grad = torch.randn(p.shape, generator=gen)
            opt.step()
        results.append(ps)
    for a, b in zip(*results):
        assert torch.equal(a, b)
