"""Run a command sweep's trial and take its whole process group down when the worker that started it dies.

Started by :func:`weightdecay.sweeps.workloads.command.run_command` as ``python -I _guard.py WORKER_PID ARGV...`` (by path,
so it imports nothing of the package) as the leader of a new process group. It runs ARGV as its child in that
group and exits with the child's status (128 + N for signal N). If the worker disappears, even by kill -9, the
guard kills its group with SIGKILL: the user's script and everything it started (data-loader workers, shells),
unless they moved to a group of their own. On Linux the kernel tells it at once (``PR_SET_PDEATHSIG``);
everywhere it also checks its parent once a second. Without it, a kill -9 of the sweep would leave the trials
training on, unseen, for as long as they run.
"""

import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _kill_group(*_: object) -> None:
    os.killpg(os.getpgid(0), signal.SIGKILL)


def main() -> int:
    worker, argv = int(sys.argv[1]), sys.argv[2:]
    signal.signal(signal.SIGTERM, _kill_group)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the once-a-second check below still holds
            pass
    if os.getppid() != worker:  # the worker died before the kernel was told to signal us
        _kill_group()
    try:
        child = subprocess.Popen(argv)
    except OSError as exc:
        print(f"weightdecay sweep: cannot run {argv[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    while True:
        try:
            code = child.wait(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            if os.getppid() != worker:
                _kill_group()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
