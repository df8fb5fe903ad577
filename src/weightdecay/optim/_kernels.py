"""One pass over memory for the CPU steps that torch's fused kernels cannot take.

torch's fused CPU kernels take every AdamW mode but ``stable`` in one pass. Three steps need more than they offer
(docs/math.md, 'Decay conventions'):

- SGDW with momentum and a decoupled shrink, ``p ← p·(1 - s_t) - lr_t·d``: torch's SGD knows only coupled decay;
- AdamW ``stable``, whose ``s_t = lr_t·λ/sqrt(mean v̂_t)`` needs the mean of this step's v̂ before any shrink,
  from ``Σv_t = β2·Σv_{t-1} + (1-β2)·Σg²``: :func:`adamw_step` leaves each tensor's Σv as it writes v, so the next
  :func:`v_hat_sum` reads g alone (32 bytes moved per float32 parameter in all, against the fused kernel's 28), and
  g and v (36) where a kept sum may be stale;
- cautious decay, ``p ← p - s_t·1[u_t⊙p ≥ 0]⊙p - lr_t·u_t`` with ``u_t`` the direction the optimizer subtracts,
  both at the same ``p_t``: :func:`adamw_step` and :func:`sgdw_step` with ``cautious=True``.

``csrc/fused_steps.cpp`` holds the loops in plain C++ with no torch headers, so it builds in a few seconds. It is
built once per machine with the system C++ compiler (``$CXX``, else ``c++``/``g++``/``clang++``), logged in one
line with the time it took, cached as ``$WEIGHTDECAY_CACHE/kernels/fused_steps-KEY.so`` (default
``~/.cache/weightdecay``; KEY hashes the source, the flags, the compiler and the CPU, for it is built for this CPU)
and called through ctypes. Each function returns False (None for :func:`v_hat_sum`) where it cannot take the step,
and the optimizer then takes torch's path: a tensor subclass (DTensor, a fake tensor while tracing), a tensor not
on the CPU, not float32/float64 or not dense, a sparse gradient, a ``step`` that is not a float32 scalar, or no
library (no compiler, a failed build: one warning per process, never an error). ``WEIGHTDECAY_CPU_KERNELS=0``
turns them off.

Checking and collecting the tensors' addresses costs a few microseconds per tensor in Python, as much as the kernel
takes for a tensor of 1e4 elements, so each optimizer keeps them per group from step to step (:func:`plans_of`),
looking again at the gradients only (backward makes new ones).

AMP: ``grad_scale`` divides every gradient (as torch's fused kernels do) and a ``found_inf`` step changes nothing:
no parameter, moment or step count moves.

Example:
    >>> import torch
    >>> from weightdecay.optim import _kernels
    >>> p = torch.ones(3); p.grad = torch.ones(3)
    >>> group = dict(momentum=0.9, dampening=0.0, nesterov=False, maximize=False, decay="torch", weight_decay=0.1)
    >>> buffers = [None]
    >>> _kernels.sgdw_step([p], [p.grad], buffers, group, lr=0.5, shrink_t=0.05)  # False without a compiler
    True
    >>> round(p[0].item(), 6)  # 1·(1 - 0.05) - 0.5·1: b = g at the first step
    0.45
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import math
import operator
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from weightdecay.decay import coupled_weight_decay

__all__ = ["available", "adamw_step", "adamw_step_kept", "plans_of", "sgdw_step", "sgdw_step_kept", "v_hat_sum"]

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "fused_steps.cpp"
# -march=native: built for the machine it runs on (the cache key names the CPU). -fno-math-errno (sqrt is one
# instruction) and -fno-trapping-math (the cautious mask is a select) let the loops vectorize; nothing here reads
# errno or the FP exception flags. No -ffast-math: every operation stays IEEE, in the order written.
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp", "-shared", "-fPIC",
         "-std=c++17")
ENABLE_ENV = "WEIGHTDECAY_CPU_KERNELS"
CACHE_ENV = "WEIGHTDECAY_CACHE"  # the data layer's cache, which this layer may not import
BUILD_TIMEOUT_S = 300
MAX_PLANS = 64  # groups of one optimizer whose plans are kept
_VERSION = operator.attrgetter("_version")  # a tensor's in-place version counter

_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
# bfloat16/float16 weights: float32 arithmetic and a compensated write-back (weightdecay.optim._precision).
_KEPT_SUFFIX = {torch.bfloat16: "bf16", torch.float16: "f16"}
# Tensors with their own storage: a subclass (DTensor, FakeTensor under tracing) may have none to point at.
_PLAIN = (torch.Tensor, torch.nn.Parameter)
_PP = ctypes.POINTER(ctypes.c_void_p)
_I64P = ctypes.POINTER(ctypes.c_int64)
_DP = ctypes.POINTER(ctypes.c_double)
_D, _I = ctypes.c_double, ctypes.c_int
_SIGNATURES = {
    # n, p, g, m, v, vmax, steps, numel, lr, β1, β2, eps, shrink, coupled, amsgrad, maximize, bias_correction,
    # grad_scale, cautious, threads, v_sums (out, or null), v_sum_steps (out)
    "wd_adam_step": (None, [ctypes.c_int64, _PP, _PP, _PP, _PP, _PP, _PP, _I64P, _D, _D, _D, _D, _D, _D, _I, _I, _I,
                            _D, _I, _I, _DP, _DP]),
    # n, p, g, buffers, first, numel, lr, momentum, dampening, nesterov, shrink, coupled, maximize, grad_scale,
    # cautious, threads
    "wd_sgd_step": (None, [ctypes.c_int64, _PP, _PP, _PP, ctypes.POINTER(ctypes.c_uint8), _I64P, _D, _D, _D, _I, _D,
                           _D, _I, _D, _I, _I]),
    # n, g, v, p, steps, numel, v_sums (or null), v_sum_steps, β2, coupled, maximize, bias_correction, grad_scale,
    # threads
    "wd_v_hat_sum": (_D, [ctypes.c_int64, _PP, _PP, _PP, _PP, _I64P, _DP, _DP, _D, _D, _I, _I, _D, _I]),
}
_KEPT_SIGNATURES = {
    # n, p, g, m, v, vmax, compensation, steps, numel, lr, β1, β2, eps, shrink, coupled, amsgrad, maximize,
    # bias_correction, grad_scale, cautious, threads
    "wd_adam_step_kept": (None, [ctypes.c_int64, _PP, _PP, _PP, _PP, _PP, _PP, _PP, _I64P, _D, _D, _D, _D, _D, _D,
                                 _I, _I, _I, _D, _I, _I]),
    # n, p, g, buffers, compensation, first, numel, lr, momentum, dampening, nesterov, shrink, coupled, maximize,
    # grad_scale, cautious, threads
    "wd_sgd_step_kept": (None, [ctypes.c_int64, _PP, _PP, _PP, _PP, ctypes.POINTER(ctypes.c_uint8), _I64P, _D, _D,
                                _D, _I, _D, _D, _I, _D, _I, _I]),
}


# --- building and loading the library -------------------------------------------------------------------------

def kernel_dir() -> Path:
    """Where the built library is cached: ``$WEIGHTDECAY_CACHE/kernels``, default ``~/.cache/weightdecay/kernels``."""
    configured = os.environ.get(CACHE_ENV)
    return (Path(configured).expanduser() if configured else Path.home() / ".cache" / "weightdecay") / "kernels"


def _compiler() -> str | None:
    configured = os.environ.get("CXX")
    if configured:
        return shutil.which(configured) or (configured if Path(configured).is_file() else None)
    for name in ("c++", "g++", "clang++"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _cpu_signature() -> str:
    """The CPU's model and instruction-set flags: what -march=native builds for."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        wanted = [ln for ln in lines if ln.startswith(("model name", "flags", "Features", "CPU part"))]
        return "\n".join(dict.fromkeys(wanted))
    except OSError:
        return platform.processor()


def _library_key(source: bytes, compiler: str) -> str:
    digest = hashlib.sha256(source)
    for part in (*FLAGS, os.path.realpath(compiler), sys.platform, platform.machine(), _cpu_signature()):
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()[:16]


def _build(compiler: str, target: Path) -> None:
    """Compile SOURCE into ``target`` through a temporary file and ``os.replace``: parallel workers never load a
    half-written library, and the last of two simultaneous builds simply wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", tmp], check=True, capture_output=True, text=True,
                       timeout=BUILD_TIMEOUT_S)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    for signatures, suffixes in ((_SIGNATURES, _SUFFIX), (_KEPT_SIGNATURES, _KEPT_SUFFIX)):
        for name, (restype, argtypes) in signatures.items():
            for suffix in suffixes.values():
                fn = getattr(lib, f"{name}_{suffix}")
                fn.restype, fn.argtypes = restype, argtypes
    return lib


def _why(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        lines = [ln for ln in (exc.stderr or "").splitlines() if ln.strip()]
        return f"the compiler failed: {lines[0] if lines else exc}"
    return f"{type(exc).__name__}: {exc}"


@functools.cache
def _library() -> ctypes.CDLL | None:
    """The loaded library, built first if this machine has none cached; None (after one warning) if it cannot be."""
    if os.environ.get(ENABLE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    fallback = ("fused=True keeps torch's kernels, with extra passes over memory for SGDW with momentum and AdamW "
                "stable (the results are the same)")
    compiler = _compiler()
    if compiler is None:
        log.warning("weightdecay: no C++ compiler found (set CXX) to build its fused CPU kernels; %s", fallback)
        return None
    try:
        source = SOURCE.read_bytes()
        path = kernel_dir() / f"fused_steps-{_library_key(source, compiler)}.so"
        if not path.is_file():
            start = time.perf_counter()
            try:
                _build(compiler, path)
            except OSError as exc:  # an unwritable cache: build into a temporary folder, for this process only
                if isinstance(exc, FileNotFoundError) and not Path(compiler).exists():
                    raise
                path = Path(tempfile.mkdtemp(prefix="weightdecay-kernels-")) / path.name
                _build(compiler, path)
            log.warning("weightdecay: built its fused CPU kernels in %.1f s with %s, once for this machine "
                        "(cached as %s)", time.perf_counter() - start, Path(compiler).name, path)
        return _declare(ctypes.CDLL(str(path)))
    except (OSError, subprocess.SubprocessError, AttributeError) as exc:
        log.warning("weightdecay: could not build its fused CPU kernels (%s); %s", _why(exc), fallback)
        return None


def available() -> bool:
    """Whether the kernels are built and loaded (building them on the first call)."""
    return _library() is not None


# --- which tensors, at which addresses ---------------------------------------------------------------------

# --- which tensors, at which addresses ---------------------------------------------------------------------

def _dense(t: Tensor) -> bool:
    return t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)) or (
        t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d))


def _laid_out_as(c: Tensor, p: Tensor) -> bool:
    return c.layout is torch.strided and c.stride() == p.stride()


class _Plan:
    """What the kernels need of one group's tensors: the dtype suffix, an address array for each list (params,
    grads, each state list, then steps), the element counts; kept by the optimizer from step to step.

    Checking and collecting a tensor costs microseconds in Python, more than stepping one of 1e4 elements, so a
    plan is kept while its tensors stay the same objects at the same addresses (``fits``), and only the gradients,
    which backward makes anew, are looked at every step. It holds its tensors by weak reference, so a state it saw
    replaced (load_state_dict) is freed. For AdamW it also keeps each tensor's Σv as the last kernel step left it
    (``v_sums``, with the step count it is of), from which ``stable``'s next sum needs g alone.
    """

    __slots__ = ("suffix", "arrays", "numel", "count", "refs", "addresses", "contiguous", "v_sums", "v_sum_steps",
                 "v_versions")

    def __init__(self, suffix: str, addresses: list[list[int]], numel: list[int], contiguous: bool,
                 tensors: list[Sequence[Tensor | None]] | None) -> None:
        self.suffix, self.numel, self.count, self.contiguous = suffix, (ctypes.c_int64 * len(numel))(*numel), \
            sum(numel), contiguous
        self.arrays = [(ctypes.c_void_p * len(a))(*a) for a in addresses]
        self.addresses = [a for k, a in enumerate(addresses) if k != 1]  # all but the gradients', to compare
        # None where a list holds None (a momentum buffer not made yet): such a plan serves one step only.
        self.refs = None if tensors is None else [[weakref.ref(t) for t in ts] for ts in tensors]
        n = len(numel)
        self.v_sums = (ctypes.c_double * n)(*([math.nan] * n))
        self.v_sum_steps = (ctypes.c_double * n)()
        self.v_versions: list[int] | None = None

    def kernel(self, name: str) -> Any:
        """The library's function ``name`` for this plan's dtype."""
        return getattr(_library(), f"{name}_{self.suffix}")

    def fits(self, params: Sequence[Tensor], grads: Sequence[Tensor], lists: list[Sequence[Tensor | None]]) -> bool:
        """Whether these are the tensors the plan was made for, where it found them; if so, takes the gradients'
        addresses (after checking their layout, all a gradient can change: Tensor.grad fixes dtype and shape)."""
        if self.refs is None:
            return False
        for tensors, refs, addresses in zip(lists, self.refs, self.addresses):
            if (len(tensors) != len(refs) or not all(map(operator.is_, tensors, [r() for r in refs]))
                    or list(map(Tensor.data_ptr, tensors)) != addresses):
                return False
        if not (all(map(Tensor.is_contiguous, grads)) if self.contiguous else
                all(map(_laid_out_as, grads, params))):
            return False
        self.arrays[1][:] = list(map(Tensor.data_ptr, grads))
        return True


def _plan(plans: dict[Any, _Plan] | None, key: Any, params: Sequence[Tensor], grads: Sequence[Tensor],
          *states: Sequence[Tensor | None], steps: Sequence[Tensor] | None = None,
          suffixes: dict[torch.dtype, str] = _SUFFIX) -> _Plan | None:
    """The plan for these tensors: ``plans[key]`` if it still fits, else a new one (kept there); None where a tensor
    is one the kernels cannot take (see the module docstring) or there is no library."""
    if _library() is None:
        return None
    lists = [params, *states] + ([steps] if steps is not None else [])
    kept = plans.get(key) if plans is not None else None
    if kept is not None and kept.fits(params, grads, lists):
        return kept
    plan = _new_plan(params, grads, states, steps, suffixes)
    if plans is not None:
        if len(plans) > MAX_PLANS:  # groups come and go (load_state_dict makes new ones): forget the old
            plans.clear()
        if plan is None:
            plans.pop(key, None)
        else:
            plans[key] = plan
    return plan


def plans_of(optimizer: torch.optim.Optimizer) -> dict[int, _Plan]:
    """An optimizer's plans, by ``id(group)``: never pickled nor copied (torch.optim.Optimizer pickles only its
    defaults, state and param_groups), so a copy or a loaded optimizer starts with none."""
    return optimizer.__dict__.setdefault("_weightdecay_kernel_plans", {})


def _new_plan(params: Sequence[Tensor], grads: Sequence[Tensor], states: Sequence[Sequence[Tensor | None]],
              steps: Sequence[Tensor] | None, suffixes: dict[torch.dtype, str] = _SUFFIX) -> _Plan | None:
    """A plan after checking every tensor: each a dense CPU tensor of the params' one float dtype laid out as its
    parameter (a state may be None: a momentum buffer not made yet, address 0), and every step a float32 CPU
    scalar. A group that mixes float32 and float64 takes torch's path, as does one with a tensor subclass or a
    sparse gradient.
    """
    suffix = suffixes.get(params[0].dtype) if params else None
    if suffix is None:
        return None
    dtype = params[0].dtype
    p_addr: list[int] = []
    g_addr: list[int] = []
    s_addr: list[list[int]] = [[] for _ in states]
    step_addr: list[int] = []
    numels = []
    contiguous = True
    for i, p in enumerate(params):
        if type(p) not in _PLAIN or p.dtype is not dtype or not p.is_cpu:
            return None
        g = grads[i]
        if p.is_contiguous():
            if not g.is_contiguous():
                return None
            for tensors, out in zip(states, s_addr):
                c = tensors[i]
                if c is None:
                    out.append(0)
                elif c.is_contiguous() and c.dtype is dtype and c.is_cpu:
                    out.append(c.data_ptr())
                else:
                    return None
        else:  # channels_last and the like: dense, walked in memory order, if every companion has p's strides
            contiguous = False
            if not _dense(p) or not _laid_out_as(g, p):
                return None
            for tensors, out in zip(states, s_addr):
                c = tensors[i]
                if c is not None and not (_laid_out_as(c, p) and c.dtype is dtype and c.is_cpu):
                    return None
                out.append(0 if c is None else c.data_ptr())
        if steps is not None:
            step = steps[i]
            if step.dtype is not torch.float32 or not step.is_cpu:
                return None
            step_addr.append(step.data_ptr())
        p_addr.append(p.data_ptr())
        g_addr.append(g.data_ptr())
        numels.append(p.numel())
    lists = [params, *states] + ([steps] if steps is not None else [])
    complete = all(t is not None for ts in states for t in ts)
    return _Plan(suffix, [p_addr, g_addr, *s_addr] + ([step_addr] if steps is not None else []), numels, contiguous,
                 lists if complete else None)


# --- the calls --------------------------------------------------------------------------------------------------

def _grad_divisor(grad_scale: Tensor | None, found_inf: Tensor | None) -> float | None:
    """What divides every gradient (1.0 without AMP); None when found_inf says this step is to be skipped."""
    if found_inf is not None and float(found_inf) != 0:
        return None
    return float(grad_scale) if grad_scale is not None else 1.0


def _written(params: Sequence[Tensor]) -> None:
    # Written through raw pointers, so autograd's version counters are bumped by hand: a graph that saved a
    # parameter before the step then fails loudly at backward, as after torch's own in-place step.
    torch.autograd.graph.increment_version(params)


def _adam_plan(t: dict[str, list], group: dict[str, Any], plans: dict[int, _Plan] | None) -> _Plan | None:
    """The plan for an AdamW group's tensors, taken once per step: remembered in ``t`` for the step's other call."""
    if "kernel_plan" not in t:
        states = (t["exp_avgs"], t["exp_avg_sqs"]) + ((t["max_exp_avg_sqs"],) if group["amsgrad"] else ())
        t["kernel_plan"] = _plan(plans, id(group), t["params"], t["grads"], *states, steps=t["steps"])
    return t["kernel_plan"]


def adamw_step(t: dict[str, list], group: dict[str, Any], *, lr: float, shrink_t: float, cautious: bool = False,
               grad_scale: Tensor | None = None, found_inf: Tensor | None = None,
               plans: dict[int, _Plan] | None = None) -> bool:
    r"""One AdamW step of a group in one pass over memory (every tensor read once and written once).

    ``p ← p·(1 - s_t) - lr_t·u_t``, or with ``cautious`` ``p ← p - s_t·1[u_t⊙p ≥ 0]⊙p - lr_t·u_t``, where
    ``u_t = m̂_t/(sqrt(v̂_t) + ε)`` (v̂ from the running maximum with amsgrad) and the moments take ``g/grad_scale``,
    negated with maximize, plus ``λ·p`` for ``l2``. Each ``step`` count advances by one.

    Args:
        t: the group's tensors as ``AdamW._init_group`` collects them (params, grads, exp_avgs, exp_avg_sqs,
            max_exp_avg_sqs, steps); the step's plan is kept in it under ``kernel_plan``.
        group: the parameter group (betas, eps, amsgrad, maximize, bias_correction, decay, weight_decay).
        lr: ``lr_t``.
        shrink_t: ``s_t`` (from :func:`weightdecay.decay.shrink`; 0 for ``l2``).
        cautious: apply the shrink only where ``u_t`` and ``p`` agree in sign.
        grad_scale, found_inf: AMP's, as a GradScaler hands them to a fused optimizer.
        plans: the optimizer's plans, kept from step to step (None: checked afresh); the step leaves each
            tensor's Σv_t in its plan, for :func:`v_hat_sum`.

    Returns:
        True if the step was taken (or skipped for found_inf); False if nothing was done and the caller must take
        the step another way.
    """
    plan = _adam_plan(t, group, plans)
    if plan is None:
        return False
    divisor = _grad_divisor(grad_scale, found_inf)
    if divisor is None:
        return True
    amsgrad = bool(group["amsgrad"])
    p, g, m, v, *rest = plan.arrays
    vmax, steps = rest if amsgrad else (None, rest[0])
    beta1, beta2 = (float(b) for b in group["betas"])
    plan.kernel("wd_adam_step")(
        len(t["params"]), p, g, m, v, vmax, steps, plan.numel, lr, beta1, beta2, float(group["eps"]), shrink_t,
        coupled_weight_decay(group["decay"], group["weight_decay"]), int(amsgrad), int(bool(group["maximize"])),
        int(bool(group["bias_correction"])), divisor, int(cautious), torch.get_num_threads(), plan.v_sums,
        plan.v_sum_steps)
    plan.v_versions = list(map(_VERSION, t["exp_avg_sqs"]))  # the kernel's writes leave them as they were
    _written(t["params"])
    return True


def v_hat_sum(t: dict[str, list], group: dict[str, Any], *, grad_scale: Tensor | None = None,
              plans: dict[int, _Plan] | None = None) -> tuple[float, int] | None:
    r"""``(Σ v̂_t, count)`` over every element of the group, as this step's moment update will make v, before it.

    ``v̂_t = (β2·v + (1-β2)·g²) / (1-β2^(step+1))`` (no division without bias correction), ``g`` as the step
    will see it (divided by ``grad_scale``, negated with maximize, plus ``λ·p`` for ``l2``), accumulated in
    double. Σv comes from the plan where the last step was the kernel's and v has not changed since (same tensor,
    same version counter, same step count): then only g is read (and p for ``l2``), else g and v. Returns None
    where the kernels cannot take the group (see the module docstring); the caller then sums with torch. The pair
    is what a distributed mean reduces.
    """
    plan = _adam_plan(t, group, plans)
    if plan is None:
        return None
    versions = list(map(_VERSION, t["exp_avg_sqs"]))
    if plan.v_versions is not None and versions != plan.v_versions:
        for i, (now, then) in enumerate(zip(versions, plan.v_versions)):
            if now != then:  # v edited in place since the kernel wrote it (the state changed by hand)
                plan.v_sums[i] = math.nan
    p, g, _, v, *rest = plan.arrays
    total = plan.kernel("wd_v_hat_sum")(
        len(t["params"]), g, v, p, rest[-1], plan.numel, plan.v_sums, plan.v_sum_steps, float(group["betas"][1]),
        coupled_weight_decay(group["decay"], group["weight_decay"]), int(bool(group["maximize"])),
        int(bool(group["bias_correction"])), float(grad_scale) if grad_scale is not None else 1.0,
        torch.get_num_threads())
    return total, plan.count


def _first_buffers(plan: _Plan, params: Sequence[Tensor], buffers: list[Tensor | None]) -> Any:
    """Momentum buffers not made yet (None) made here, as torch.optim.SGD makes them at a tensor's first step, and
    their addresses put in the plan; returns the kernel's per-tensor ``first`` flags (b = g there)."""
    first = (ctypes.c_uint8 * len(params))()
    if plan.refs is None:
        for i, b in enumerate(buffers):
            if b is None:  # b = g at its first step: the kernel writes every element, so no zeros are needed
                buffers[i] = torch.empty_like(params[i], memory_format=torch.preserve_format)
                plan.arrays[2][i] = buffers[i].data_ptr()
                first[i] = 1
    return first


def sgdw_step(params: list[Tensor], grads: list[Tensor], buffers: list[Tensor | None], group: dict[str, Any], *,
              lr: float, shrink_t: float, cautious: bool = False, grad_scale: Tensor | None = None,
              found_inf: Tensor | None = None, plans: dict[int, _Plan] | None = None) -> bool:
    r"""One SGDW step of a group in one pass over memory (p, g and the momentum buffer read once, p and b written).

    ``b ← μ·b + (1-dampening)·g`` (``b = g`` at the first step), ``d = g + μ·b`` if nesterov else ``b`` (``d = g``
    without momentum), then ``p ← p·(1 - s_t) - lr_t·d``, or with ``cautious`` ``p ← p - s_t·1[d⊙p ≥ 0]⊙p - lr_t·d``;
    ``g`` is divided by ``grad_scale``, negated with maximize, plus ``λ·p`` for ``l2``.

    Args:
        params, grads: the group's parameters that have a gradient, and their gradients.
        buffers: their momentum buffers (None where not yet made: filled in here, as torch.optim.SGD does);
            ignored without momentum.
        group: the parameter group (momentum, dampening, nesterov, maximize, decay, weight_decay).
        lr: ``lr_t``.
        shrink_t: ``s_t`` (from :func:`weightdecay.decay.shrink`; 0 for ``l2``).
        cautious: apply the shrink only where ``d`` and ``p`` agree in sign.
        grad_scale, found_inf: AMP's, as a GradScaler hands them to a fused optimizer.
        plans: the optimizer's plans, kept from step to step (None: checked afresh).

    Returns:
        True if the step was taken (or skipped for found_inf); False if nothing was done.
    """
    momentum = float(group["momentum"])
    plan = _plan(plans, id(group), params, grads, *([buffers] if momentum != 0 else []))
    if plan is None:
        return False
    divisor = _grad_divisor(grad_scale, found_inf)
    if divisor is None:
        return True
    first = _first_buffers(plan, params, buffers) if momentum != 0 else (ctypes.c_uint8 * len(params))()
    plan.kernel("wd_sgd_step")(
        len(params), plan.arrays[0], plan.arrays[1], plan.arrays[2] if momentum != 0 else None, first, plan.numel,
        lr, momentum, float(group["dampening"]), int(bool(group["nesterov"])), shrink_t,
        coupled_weight_decay(group["decay"], group["weight_decay"]), int(bool(group["maximize"])), divisor,
        int(cautious), torch.get_num_threads())
    _written(params)
    return True


# --- bfloat16 and float16 weights: float32 arithmetic, compensated write-back -----------------------------------

def adamw_step_kept(t: dict[str, list], group: dict[str, Any], buffers: list[Tensor], *, lr: float, shrink_t: float,
                    cautious: bool = False, grad_scale: Tensor | None = None, found_inf: Tensor | None = None,
                    plans: dict[Any, _Plan] | None = None) -> bool:
    r""":func:`adamw_step` for bfloat16 or float16 tensors (one format per group), with a compensated write-back.

    Everything is read in the weights' format and computed in float32; the change ``Δ = -s_t·p - lr_t·u_t``
    (cautious: ``-s_t·1[u_t⊙p ≥ 0]⊙p - lr_t·u_t``) is written as ``y = Δ + c``, ``p ← round(p + y)``,
    ``c ← (p + y) - p_new`` with ``c`` the tensor's compensation buffer (``buffers``, in the weights' format).
    The moments are stored in the weights' format, as torch's fused kernel stores them. Returns False where the
    kernels cannot take the group (the caller then takes :func:`weightdecay.optim.adamw`'s torch path).
    """
    amsgrad = bool(group["amsgrad"])
    states = (t["exp_avgs"], t["exp_avg_sqs"]) + ((t["max_exp_avg_sqs"],) if amsgrad else ()) + (buffers,)
    plan = _plan(plans, ("kept", id(group)), t["params"], t["grads"], *states, steps=t["steps"],
                 suffixes=_KEPT_SUFFIX)
    if plan is None:
        return False
    divisor = _grad_divisor(grad_scale, found_inf)
    if divisor is None:
        return True
    p, g, m, v, *rest = plan.arrays
    vmax, c, steps = rest if amsgrad else (None, *rest)
    beta1, beta2 = (float(b) for b in group["betas"])
    plan.kernel("wd_adam_step_kept")(
        len(t["params"]), p, g, m, v, vmax, c, steps, plan.numel, lr, beta1, beta2, float(group["eps"]), shrink_t,
        coupled_weight_decay(group["decay"], group["weight_decay"]), int(amsgrad), int(bool(group["maximize"])),
        int(bool(group["bias_correction"])), divisor, int(cautious), torch.get_num_threads())
    _written(t["params"])
    return True


def sgdw_step_kept(params: list[Tensor], grads: list[Tensor], buffers: list[Tensor | None],
                   compensations: list[Tensor], group: dict[str, Any], *, lr: float, shrink_t: float,
                   cautious: bool = False, grad_scale: Tensor | None = None, found_inf: Tensor | None = None,
                   plans: dict[Any, _Plan] | None = None) -> bool:
    r""":func:`sgdw_step` for bfloat16 or float16 tensors: float32 arithmetic, the change
    ``Δ = -s_t·p - lr_t·d`` written back compensated through ``compensations`` (see :func:`adamw_step_kept`).
    The momentum buffer is stored in the weights' format, as torch.optim.SGD stores it."""
    momentum = float(group["momentum"])
    lists = ([buffers] if momentum != 0 else []) + [compensations]
    plan = _plan(plans, ("kept", id(group)), params, grads, *lists, suffixes=_KEPT_SUFFIX)
    if plan is None:
        return False
    divisor = _grad_divisor(grad_scale, found_inf)
    if divisor is None:
        return True
    first = _first_buffers(plan, params, buffers) if momentum != 0 else (ctypes.c_uint8 * len(params))()
    plan.kernel("wd_sgd_step_kept")(
        len(params), plan.arrays[0], plan.arrays[1], plan.arrays[2] if momentum != 0 else None, plan.arrays[-1],
        first, plan.numel, lr, momentum, float(group["dampening"]), int(bool(group["nesterov"])), shrink_t,
        coupled_weight_decay(group["decay"], group["weight_decay"]), int(bool(group["maximize"])), divisor,
        int(cautious), torch.get_num_threads())
    _written(params)
    return True
