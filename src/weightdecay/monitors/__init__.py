"""See weight decay act inside any training loop.

:class:`Monitor` attaches to an optimizer's step hooks and records, per parameter tensor, the weight and gradient
norms, the update, the rotation per step and the shrink ``s_t`` beside the rules' predictions; ``summary()``
turns them into flags a person reads; the records go to CSV, JSON lines, TensorBoard and ``weightdecay
monitor-report``. :mod:`weightdecay.monitors.lightning` and :mod:`weightdecay.monitors.huggingface` attach it in
those trainers.
"""

from weightdecay.monitors.diagnostics import LayerDiagnostics, angle_between, rotation_angle
from weightdecay.monitors.export import read_records, write_csv, write_jsonl, write_tensorboard
from weightdecay.monitors.flags import Flag, MonitorSummary, summarize
from weightdecay.monitors.monitor import FIELDS, Monitor, decay_mode_of, optimizer_family
from weightdecay.monitors.structure import ScaleInvarianceProbe

__all__ = ["Monitor", "FIELDS", "Flag", "MonitorSummary", "summarize", "read_records", "write_csv", "write_jsonl",
           "write_tensorboard", "LayerDiagnostics", "angle_between", "rotation_angle", "ScaleInvarianceProbe",
           "decay_mode_of", "optimizer_family"]
