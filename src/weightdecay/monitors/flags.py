"""What a person should look at in a monitor's records: four flags, as data and as sentences.

1. ``gradient-norm-rise``: ``‖g‖/‖p‖`` of a normalized weight rises by more than :data:`RISE_FACTOR` over the
   last half of a schedule whose lr fell by :data:`LR_FALL` or more. Under ``torch`` decay the equilibrium ratio
   is ``sqrt(2λ/lr_t)``, which grows as ``lr_t → 0`` (Defazio 2025); ``decay="corrected"`` holds it at
   ``sqrt(2λ/peak_lr)``.
2. ``tau-below-epoch`` / ``tau-beyond-run``: the EMA timescale ``τ_iter = 1/s_t`` (median over the run) is
   shorter than one epoch, or longer than the whole run (docs/math.md, 'EMA timescale': a warning sign either way).
3. ``rotation-off-equilibrium``: a scale-invariant weight's angle per step, once :data:`SETTLE_TIMESCALES`
   timescales ``1/s_t`` have passed, is more than :data:`ROTATION_FACTOR` times off Kosson's equilibrium.
4. ``large-shrink``: one step shrank the weights by ``s_t ≥`` :data:`LARGE_SHRINK`.
5. ``decay-lost-to-rounding``: a bfloat16/float16 tensor whose format keeps less than :data:`KEPT_FRACTION` of the
   shrink (median over its records of ``shrink_kept``): ``p·(1 - s_t)`` rounds back to ``p`` (docs/math.md,
   "Low precision").
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from weightdecay.decay import DECAY_MODES

__all__ = ["Flag", "MonitorSummary", "summarize", "RISE_FACTOR", "LR_FALL", "SETTLE_TIMESCALES",
           "ROTATION_FACTOR", "LARGE_SHRINK", "KEPT_FRACTION"]

RISE_FACTOR = 1.5  # end-of-schedule ‖g‖/‖p‖ over its low point in the last half
LR_FALL = 2.0  # the schedule must have decayed by this factor over the last half for the rise to count
SETTLE_TIMESCALES = 3.0  # timescales 1/s_t after which a weight should be near its equilibrium rotation
ROTATION_FACTOR = 2.0  # measured/predicted rotation outside [1/2, 2] is "far"
LARGE_SHRINK = 0.1  # s_t in one step
KEPT_FRACTION = 0.5  # of s_t that a low-precision format keeps; below it the decay is "mostly lost"


@dataclass(frozen=True)
class Flag:
    """One finding: its kind, the tensors or group it concerns, the measured value against its threshold."""

    kind: str
    names: tuple[str, ...]
    value: float
    threshold: float
    sentence: str


@dataclass
class MonitorSummary:
    """The flags, one sentence each, and per-tensor figures (final norms, settled rotation against prediction)."""

    flags: list[Flag] = field(default_factory=list)
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: int = 0

    @property
    def sentences(self) -> list[str]:
        return [f.sentence for f in self.flags]

    def worth_showing(self, limit: int | None = None) -> list[str]:
        """The tensors worth a look, best first: scale-invariant, then flagged, then decayed (s_t > 0), largest
        ‖p‖ first; tensors neither scale-invariant nor decayed are left out. At most ``limit``."""
        layers = self.layers
        flagged = {n for f in self.flags for n in f.names if n in layers and len(f.names) == 1}
        ranked = sorted(layers, key=lambda n: (not layers[n]["scale_invariant"], n not in flagged,
                                              not layers[n]["shrink"], -(layers[n]["weight_norm"] or 0.0)))
        return [n for n in ranked if layers[n]["scale_invariant"] or layers[n]["shrink"]][:limit]

    def to_dict(self, max_layers: int | None = None) -> dict[str, Any]:
        """Plain JSON-ready data (tuples as lists); ``layers`` keeps the first ``max_layers`` of
        :meth:`worth_showing` when given (a sweep stores it per trial: bounded, whatever the model's size),
        ``tensors`` says how many there were."""
        flags = [{**asdict(f), "names": list(f.names)} for f in self.flags]
        kept = self.layers if max_layers is None else {n: self.layers[n] for n in self.worth_showing(max_layers)}
        return {"steps": self.steps, "flags": flags, "layers": kept, "tensors": len(self.layers)}

    def __str__(self) -> str:
        if not self.flags:
            return f"No weight-decay flags after {self.steps} steps."
        return "\n".join(f"- {s}" for s in self.sentences)


def _mode_sentence(mode: str | None) -> str:
    return DECAY_MODES[mode].sentence if mode in DECAY_MODES else ""


def _g(x: float) -> str:
    return f"{x:.3g}"


def _by_name(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(r["name"], []).append(r)
    for rows in out.values():
        rows.sort(key=lambda r: r["step"])
    return out


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _rise(rows: list[dict[str, Any]]) -> tuple[float, float] | None:
    """(rise of ‖g‖/‖p‖ over the last half, fall of the lr over it), or None when there is too little data."""
    half = [r for r in rows[len(rows) // 2:] if r["grad_to_weight"] is not None and r["lr"] is not None]
    if len(half) < 6:
        return None
    ratios = [r["grad_to_weight"] for r in half]
    # Medians over five records smooth the minibatch noise before the low point is taken.
    smooth = [statistics.median(ratios[max(0, i - 2):i + 3]) for i in range(len(ratios))]
    end = statistics.median(ratios[-max(3, len(ratios) // 10):])
    low = min(smooth)
    lr_fall = half[0]["lr"] / half[-1]["lr"] if half[-1]["lr"] > 0 else float("inf")
    return (end / low if low > 0 else float("inf")), lr_fall


def _settled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records after SETTLE_TIMESCALES timescales ∑ s_t (integrated between records) have passed."""
    elapsed, previous_step, out = 0.0, 0, []
    for r in rows:
        s = r["shrink"] or 0.0
        elapsed += s * (r["step"] - previous_step)
        previous_step = r["step"]
        if elapsed >= SETTLE_TIMESCALES:
            out.append(r)
    return out


def summarize(records: list[dict[str, Any]], *, steps_per_epoch: int | None = None,
              total_steps: int | None = None) -> MonitorSummary:
    """The flags a run's records raise (module docstring), with a sentence for each.

    Args:
        records: a monitor's records (``monitor.records`` or :func:`weightdecay.monitors.read_records`).
        steps_per_epoch: for sentences in epochs (``tau_epoch`` in the records is used where present).
        total_steps: the run's planned length (default: the last recorded step).

    >>> summarize([]).flags
    []
    """
    summary = MonitorSummary(steps=max((r["step"] for r in records), default=0))
    run_steps = total_steps or summary.steps
    by_name = _by_name(records)
    flags: list[Flag] = []
    lost: dict[str, list[tuple[str, list[dict[str, Any]], float]]] = {}  # by dtype: tensors whose decay rounds away

    for name, rows in by_name.items():
        invariant = any(r["predicted_rotation"] is not None for r in rows)
        settled = _settled(rows) if invariant else []
        measured = _median([r["rotation"] for r in settled])
        predicted = _median([r["predicted_rotation"] for r in settled])
        summary.layers[name] = {
            "group": rows[-1]["group"], "scale_invariant": invariant, "weight_norm": rows[-1]["weight_norm"],
            "grad_to_weight": rows[-1]["grad_to_weight"], "shrink": rows[-1]["shrink"],
            "tau_iter": rows[-1]["tau_iter"], "settled_rotation": measured, "predicted_rotation": predicted,
        }
        kept = _median([r.get("shrink_kept") for r in rows])
        if kept is not None and kept < KEPT_FRACTION:
            lost.setdefault(rows[-1].get("dtype") or "low precision", []).append((name, rows, kept))
        if not invariant:
            continue
        rise = _rise(rows)
        if rise is not None and rise[0] > RISE_FACTOR and rise[1] >= LR_FALL:
            corrected = rows[-1]["decay"] == "corrected"
            fix = ("even under decay='corrected': look for another cause (a warm restart, a loss spike)"
                   if corrected else "decay='corrected' (AdamC) holds it near sqrt(2λ/peak_lr) instead of "
                   "sqrt(2λ/lr_t)")
            flags.append(Flag("gradient-norm-rise", (name,), rise[0], RISE_FACTOR,
                              f"‖g‖/‖p‖ of {name} rose {rise[0]:.2f}× over the last half of the schedule while the "
                              f"lr fell {_g(rise[1])}×: the end-of-schedule gradient-norm rise (Defazio 2025); "
                              f"{fix}."))
        if measured is not None and predicted and not (
                1 / ROTATION_FACTOR <= measured / predicted <= ROTATION_FACTOR):
            flags.append(Flag("rotation-off-equilibrium", (name,), measured / predicted, ROTATION_FACTOR,
                              f"{name} turns {_g(measured)} rad per step after {SETTLE_TIMESCALES:g} timescales "
                              f"1/s_t, {measured / predicted:.2f}× Kosson's equilibrium {_g(predicted)}: it is "
                              "not at rotational equilibrium (is it really followed by a normalization? is the "
                              "lr still changing fast?)."))

    flags += [_lost_to_rounding(dtype, tensors) for dtype, tensors in lost.items()]
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        if r["shrink"]:
            groups.setdefault(r["group"], []).append(r)
    for g, rows in sorted(groups.items()):
        names = tuple(dict.fromkeys(r["name"] for r in rows))
        label = f"group {g} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
        tau_iter = _median([r["tau_iter"] for r in rows])
        tau_epoch = _median([r["tau_epoch"] for r in rows])
        per_epoch = steps_per_epoch or (tau_iter / tau_epoch if tau_epoch else None)
        if tau_epoch is not None and tau_epoch < 1:
            flags.append(Flag("tau-below-epoch", names, tau_epoch, 1.0,
                              f"τ_epoch = {_g(tau_epoch)} epochs in {label}: the weights forget everything older "
                              f"than {_g(tau_iter)} steps, less than one epoch. The weight decay is probably far "
                              "too large."))
        if tau_iter is not None and run_steps and tau_iter > run_steps:
            in_epochs = f" ({_g(tau_iter / per_epoch)} epochs)" if per_epoch else ""
            flags.append(Flag("tau-beyond-run", names, tau_iter / run_steps, 1.0,
                              f"τ_iter = {_g(tau_iter)} steps{in_epochs} in {label} is longer than the whole run "
                              f"({run_steps} steps): the decay barely acts before training ends. The weight decay "
                              "is probably too small to matter."))
        worst = max(rows, key=lambda r: r["shrink"])
        if worst["shrink"] >= LARGE_SHRINK:
            flags.append(Flag("large-shrink", names, worst["shrink"], LARGE_SHRINK,
                              f"Step {worst['step']} shrank {label} by s_t = {_g(worst['shrink'])} "
                              f"({worst['shrink']:.0%} of the weights in one step). "
                              f"{_mode_sentence(worst['decay'])} Check the convention and λ."))
    summary.flags = flags
    return summary


def _lost_to_rounding(dtype: str, tensors: list[tuple[str, list[dict[str, Any]], float]]) -> Flag:
    """One flag for the tensors of one format whose decay rounds away: the worst kept fraction, the fix."""
    names = tuple(name for name, _, _ in tensors)
    kept = max(k for _, _, k in tensors)
    s_t = _median([r["shrink"] for _, rows, _ in tensors for r in rows if r.get("shrink_kept") is not None])
    label = f"{', '.join(names[:3])}{f' and {len(names) - 3} more' if len(names) > 3 else ''}"
    how = "lost" if kept < 0.05 else "mostly lost"
    return Flag("decay-lost-to-rounding", names, kept, KEPT_FRACTION,
                f"{label} {'is' if len(names) == 1 else 'are'} {dtype}: the shrink s_t = {_g(s_t)} is below half "
                f"the spacing of {dtype} at most weights, so p·(1 - s_t) rounds back to p and keeps at most "
                f"{kept:.0%} of it: the decay is {how} to rounding. Fix: a weightdecay optimizer keeps it "
                "(rounding='compensated', its default for bfloat16/float16 weights), or keep float32 master "
                "weights (float32 parameters under torch.autocast).")
