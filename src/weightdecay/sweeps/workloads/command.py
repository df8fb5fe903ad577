"""Command sweeps: each trial runs your own training script as a subprocess and reads its JSON result line.

A config names a command template instead of a task::

    command = "python train.py --lr {lr} --weight-decay {weight_decay} --decay {decay} --seed {seed}"
    metric = "val_loss"
    timeout = 600                # seconds per trial (optional)

The placeholders are the trial's ``lr``, ``weight_decay``, ``seed``, the arm's ``decay`` and ``optimizer``,
the config's ``epochs`` and ``batch_size`` (when set), and every key of ``[extra]`` (and of an arm's
``extra``); Python format specs work (``{lr:.2e}``). The template is split like a shell line (``shlex``) and
run without a shell, so a value never needs quoting and a trial cannot run anything else than the command.
Every value the config sets must reach the script: a placeholder the config does not fill, or a setting no
placeholder uses, is a :class:`ConfigError` before any trial runs.

Each trial runs in its own folder, ``RUN_DIR/trials/ARM/NNNN/`` (the trial's number), which keeps
``command.txt``, ``stdout.log`` and ``stderr.log``. Words of the template that name an existing file or folder
relative to the config file's folder (``train.py``) are passed as absolute paths, and a leading ``python`` (or
``python3``) is the interpreter running the sweep, so the script sees the sweep's environment.

The result is the last stdout line that is a JSON object holding the metric (:func:`weightdecay.report`
prints it; :mod:`weightdecay.report_line` defines the format), or, for a script that reports in its own way,
where a ``[result]`` table says (a pattern over stdout, a JSON or CSV file, TensorBoard event files:
:mod:`~weightdecay.sweeps.workloads.metric_sources`). A non-zero exit, a timeout or no metric makes the trial
*failed*, with the cause and the last lines of its output as its error; a NaN/inf metric makes it *diverged*.
A timed-out trial, and one whose worker is interrupted or killed, loses its whole process group
(:mod:`weightdecay.sweeps.workloads._guard`).
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from weightdecay._io import atomic_write
from weightdecay.errors import ConfigError
from weightdecay.sweeps._toml import typed
from weightdecay.sweeps.arms import Arm
from weightdecay.sweeps.outcome import TrialOutcome, outcome_from_metrics
from weightdecay.sweeps.spec import SearchSpace, SweepConfig
from weightdecay.sweeps.workloads.base import check_own_code, check_train_size
from weightdecay.sweeps.workloads.metric_sources import NoResult, describe, parse_result, read_result

__all__ = ["CommandWorkload", "PLACEHOLDERS", "check_command", "command_argv", "run_command"]

# The values every trial fills in (epochs and batch_size only when the config sets them), besides [extra].
PLACEHOLDERS = ("lr", "weight_decay", "decay", "optimizer", "seed", "epochs", "batch_size")
_PYTHONS = ("python", "python3")
_GUARD = Path(__file__).with_name("_guard.py")
STDERR_TAIL = 1500  # characters of stderr kept in a failed trial's error (the whole error is cut at 2000)


def placeholders(command: str) -> list[str]:
    """The placeholder names of a template, in order (``{{`` and ``}}`` are literal braces)."""
    names = []
    for word in _split(command):
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(word) if f is not None]
        except ValueError as exc:
            raise ConfigError(f"command: {word!r}: {exc}; write a literal brace as {{{{ or }}}}") from None
        for name in fields:
            if not name.isidentifier():
                raise ConfigError(f"command: {{{name}}} in {word!r} is not a placeholder name; use a name such "
                                  f"as {{lr}} (no indexing or attributes)")
            names.append(name)
    return names


class CommandWorkload:
    key = "command"

    def check(self, raw: dict[str, Any], arms: list[Arm], search: SearchSpace, base_dir: Path) -> dict[str, Any]:
        check_own_code(raw, "your command", search)
        timeout = typed(raw, "timeout", (int, float), None)
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            raise ConfigError(f"timeout: {timeout!r}; give the seconds one trial may run, e.g. timeout = 600")
        return {"command": check_command(raw, arms, base_dir),
                "timeout": float(timeout) if timeout is not None else None,
                "result": parse_result(raw["result"], typed(raw, "metric", str)) if "result" in raw else {}}

    def check_environment(self, config: SweepConfig) -> SweepConfig:
        return check_train_size(config)

    def keeps_folder(self, config: SweepConfig) -> bool:
        return True  # command.txt, stdout.log, stderr.log and whatever the script writes

    def run(self, config: SweepConfig, arm: Arm, lr: float, weight_decay: float, seed: int, *,
            workdir: str | None, threads: int | None) -> dict[str, Any]:
        return run_command(config, arm, lr, weight_decay, seed, workdir=workdir, threads=threads).record()


def check_command(raw: dict[str, Any], arms: list[Any], base_dir: Path) -> str:
    """Validate a config's ``command`` against its settings; returns the template.

    Refused: unknown placeholders, a placeholder some arm cannot fill (``{epochs}`` without ``epochs``,
    ``{width}`` without that ``[extra]`` key), an ``[extra]`` key that shadows a trial value, and a setting
    that no placeholder passes on (it would be silently dropped), e.g. ``epochs = 10`` without ``{epochs}``.
    """
    command = raw["command"]
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(f"command: {command!r}; give the command line of one trial, e.g. command = "
                          f"\"python train.py --lr {{lr}} --weight-decay {{weight_decay}}\"")
    used = set(placeholders(command))
    extra = raw.get("extra", {})
    for key in extra:
        if key in PLACEHOLDERS:
            raise ConfigError(f"extra.{key}: the sweep fills {{{key}}} itself; rename the option")
    known = set(PLACEHOLDERS) | set(extra) | {k for a in arms for k in a.extra}
    unknown = sorted(used - known)
    if unknown:
        raise ConfigError(f"command: unknown placeholder {{{unknown[0]}}}; known: "
                          f"{', '.join('{' + k + '}' for k in sorted(known))} (add other values to [extra])")
    for key in ("epochs", "batch_size"):
        if key in used and key not in raw:
            raise ConfigError(f"command: {{{key}}} needs a value; set {key} = N in the config")
        if key in raw and key not in used:
            raise ConfigError(f"{key}: set, but the command has no {{{key}}} to pass it on; add e.g. "
                              f"--{key.replace('_', '-')} {{{key}}} to the command, or remove {key}")
    for key in extra:
        if key not in used:
            raise ConfigError(f"extra.{key}: set, but the command has no {{{key}}} to pass it on; add it to the "
                              f"command or remove it")
    for i, (arm, arm_raw) in enumerate(zip(arms, raw["arms"])):
        for key in sorted(set(arm.extra) - used):
            raise ConfigError(f"arms[{i}].extra.{key}: set, but the command has no {{{key}}} to pass it on")
        for key in ("optimizer", "decay"):
            if key in arm_raw and key not in used:
                raise ConfigError(f"arms[{i}].{key}: set, but the command has no {{{key}}} to pass it on; add "
                                  f"e.g. --{key} {{{key}}} to the command")
        missing = sorted(used - set(PLACEHOLDERS) - set(extra) - set(arm.extra))
        if missing:
            raise ConfigError(f"arms[{i}]: the command uses {{{missing[0]}}}, which arm {arm.name!r} does not set; "
                              f"add it to [extra] or to the arm's extra")
        values = _values(raw.get("epochs"), raw.get("batch_size"), extra, arm, 1e-3, 1e-2, 0)
        try:
            argv = command_argv(command, values, base_dir)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"command: cannot fill the template for arm {arm.name!r}: {exc}; check the "
                              f"format specs") from None
    program = argv[0]
    if program != sys.executable and shutil.which(program, path=os.environ.get("PATH")) is None and not (
            os.sep in program and os.access(program, os.X_OK)):
        raise ConfigError(f"command: {program!r} is not a program on this machine's PATH; give its full path "
                          f"or install it")
    return command


def trial_values(config: Any, arm: Any, lr: float, weight_decay: float, seed: int) -> dict[str, Any]:
    """The placeholder values of one trial."""
    return _values(config.epochs, config.batch_size, config.extra, arm, lr, weight_decay, seed)


def _values(epochs: Any, batch_size: Any, extra: dict[str, Any], arm: Any, lr: float, weight_decay: float,
            seed: int) -> dict[str, Any]:
    values = {"lr": lr, "weight_decay": weight_decay, "decay": arm.decay, "optimizer": arm.optimizer,
              "seed": seed, **extra, **arm.extra}
    for key, value in (("epochs", epochs), ("batch_size", batch_size)):
        if value is not None:
            values[key] = value
    return values


def command_argv(command: str, values: dict[str, Any], base_dir: str | Path) -> list[str]:
    """The argument list of one trial: the template split like a shell line, each word filled in.

    >>> command_argv("python train.py --lr {lr} --name '{name} x'", {"lr": 0.001, "name": "a b"}, "/nowhere")[2:]
    ['--lr', '0.001', '--name', 'a b x']
    """
    argv: list[str] = []
    for word in _split(command):
        if "{" in word or "}" in word:
            argv.append(word.format_map(values))
        elif (not os.path.isabs(word) and not word.startswith("-") and argv[-1:] != ["-m"]
              and (Path(base_dir) / word).exists()):
            argv.append(str(Path(base_dir, word).resolve()))
        else:
            argv.append(word)
    if argv[0] in _PYTHONS:
        argv[0] = sys.executable
    return argv


def _split(command: str) -> list[str]:
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"command: {command!r} cannot be split into words ({exc}); close the quote") from None
    if not words:
        raise ConfigError("command: empty; give the command line of one trial")
    return words


def run_command(config: Any, arm: Any, lr: float, weight_decay: float, seed: int, *,
                workdir: str | Path | None = None, threads: int | None = None) -> TrialOutcome:
    """Run one trial's command in ``workdir`` and read its result (see the module's docstring).

    Args:
        config: the :class:`~weightdecay.sweeps.config.SweepConfig` (``command``, ``metric``, ``timeout``).
        arm, lr, weight_decay, seed: the trial.
        workdir: the trial's folder (created; default a new temporary folder).
        threads: ``OMP_NUM_THREADS`` for the script, unless the environment sets it already.
    """
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="weightdecay-trial-"))
    workdir.mkdir(parents=True, exist_ok=True)
    argv = command_argv(config.command, trial_values(config, arm, lr, weight_decay, seed), config.base_dir or ".")
    atomic_write(workdir / "command.txt", shlex.join(argv) + "\n")
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")  # so stdout.log shows a running trial's progress as it happens
    if env.get("PYTHONPATH"):
        # The run's current folder is its trial folder: PYTHONPATH=src must still mean the sweep's src.
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) if p else p
                                            for p in env["PYTHONPATH"].split(os.pathsep))
    if threads:
        env.setdefault("OMP_NUM_THREADS", str(threads))
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    start = time.perf_counter()
    timed_out = False
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-I", str(_GUARD), str(os.getpid()), *argv], cwd=workdir,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, start_new_session=True)
        try:
            code = proc.wait(timeout=config.timeout)
        except subprocess.TimeoutExpired:
            timed_out, code = True, None
        finally:
            # After a timeout, or Ctrl-C / SIGTERM of the worker, the trial does not outlive the wait; after a
            # normal exit, whatever the script left running in its group goes too.
            _kill_group(proc)
    seconds = time.perf_counter() - start
    where = f"stderr ({stderr_path})"
    if timed_out:
        return _failed(f"timed out after {config.timeout:g} s (timeout in the config); its processes were killed",
                       stderr_path, where, seconds)
    if code != 0:
        how = f" (killed by signal {code - 128}{': out of memory?' if code == 128 + 9 else ''})" if code > 128 else ""
        return _failed(f"command exited with status {code}{how}", stderr_path, where, seconds)
    try:
        metrics, history = read_result(config.result, config.metric, stdout_path.read_text(errors="replace"),
                                       workdir)
    except NoResult as exc:
        return _failed(f"no {config.metric!r} in {describe(config.result)}: {exc}", stdout_path,
                       f"stdout ({stdout_path})", seconds, also=(stderr_path, where))
    return outcome_from_metrics(config.metric, config.direction, metrics, history, seconds,
                                source=describe(config.result))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the guard leads the group: its pid is the group's id
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
    proc.wait()


def _failed(cause: str, log_path: Path, where: str, seconds: float,
            also: tuple[Path, str] | None = None) -> TrialOutcome:
    """A failed outcome: the cause, then the last lines of the run's output (``also``: a second log's too)."""
    parts = [cause]
    for path, label in [(log_path, where)] + ([also] if also else []):
        try:
            tail = path.read_text(errors="replace")[-STDERR_TAIL // (2 if also else 1):].rstrip()
        except OSError:
            tail = ""
        if tail:
            parts.append(f"--- last lines of {label} ---\n{tail}")
    if len(parts) == 1:
        parts[0] += " (nothing on stderr)" if also is None else " (no output)"
    return TrialOutcome("failed", seconds=seconds, error="\n".join(parts))
