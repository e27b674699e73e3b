"""How many CPU threads PyTorch uses: the one place that chooses it (``--threads`` of every sub-command).

``"auto"`` (the default) takes, in this order:

1. ``OMP_NUM_THREADS`` (or ``MKL_NUM_THREADS``) when set in the environment: the user's explicit
   choice wins, as it does for PyTorch itself;
2. the count given to ``torch.set_num_threads`` when the program changed PyTorch's default
   (PyTorch's default is the number of physical cores, read from ``/proc/cpuinfo``; where that
   is not available, this step is skipped);
3. otherwise the cores that are free: the cores this process may run on
   (``os.sched_getaffinity``) minus the 1-minute load average of the *other* processes (this
   process's own share of the load average is estimated from its CPU time and subtracted), rounded
   to the nearest whole core, at least 1 and never more than PyTorch's default.

On a CPU shared with other work, several OpenMP threads spin at barriers while one of them is
descheduled: 2 threads measured up to 20x slower than 1 on a busy 2-core machine. So a count that,
together with the load of the other processes, exceeds the cores is reported in one warning line
that says what was seen and which ``--threads`` value to use instead (nothing is said when 1 thread
is used: there is no better choice then).

:func:`cpu_threads` applies a choice to a block and also sets ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` in the environment for the block, so that processes started in it (the
libtorch check of ``unifmir export``) use the same count; both are restored afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
from dataclasses import dataclass
from typing import Callable, Iterator

__all__ = ["ENV_VARS", "ThreadChoice", "parse_threads", "available_cores", "other_load", "choose",
           "choose_threads", "cpu_threads"]

log = logging.getLogger("unifmir.threads")

ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Environment variables that fix the thread count explicitly (read in this order; set for subprocesses)."""

SLACK = 0.5
"""Load-average units tolerated above the cores before a count counts as oversubscribed (the load
average is a smoothed estimate; ``auto`` rounds the free cores to the nearest whole core)."""

_active: list[int] = []  # thread counts of the enclosing cpu_threads blocks (innermost last)


def parse_threads(threads: str | int) -> str | int:
    """``"auto"`` or a positive integer (an ``int`` or its text); ``ValueError`` naming the value otherwise."""
    if isinstance(threads, str) and threads.strip().lower() == "auto":
        return "auto"
    try:
        n = int(threads)
    except (TypeError, ValueError):
        n = 0
    if isinstance(threads, bool) or n < 1:
        raise ValueError(f"threads must be 'auto' or a positive whole number, got {threads!r}")
    return n


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` where unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - no affinity on this platform (macOS, Windows)
        return max(1, os.cpu_count() or 1)


@functools.lru_cache(maxsize=1)
def _physical_cores() -> int | None:
    """Physical cores of the machine (``/proc/cpuinfo``; PyTorch's default thread count), or ``None``.

    Read once per process: the machine does not change, every command asks."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    cores: set[tuple[str, str]] = set()
    phys = core = ""
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            phys = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not key:  # the blank line after each processor
            if core:
                cores.add((phys, core))
            phys = core = ""
    return len(cores) or None


def _own_load() -> float:
    """This process's estimated share of the 1-minute load average.

    Its average CPU use (CPU seconds of all its threads per second since it started), weighted
    as the kernel's exponential average weights a process of that age. 0 where unknown.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time after boot, in ticks
        with open("/proc/uptime", encoding="ascii") as f:
            age = float(f.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return 0.0
    if age <= 0:
        return 0.0
    times = os.times()
    rate = (times.user + times.system) / age
    return rate * (1.0 - math.exp(-age / 60.0))


def other_load() -> float | None:
    """The 1-minute load average of the other processes (this process's share subtracted), or
    ``None`` where the platform has no load average."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - no load average on this platform
        return None
    return max(0.0, load - _own_load())


def _env_threads() -> tuple[str, int] | None:
    """The first of :data:`ENV_VARS` holding a positive whole number (``"4,2"``: the outer 4)."""
    for name in ENV_VARS:
        text = os.environ.get(name, "").split(",")[0].strip()
        if text.isdigit() and int(text) > 0:
            return name, int(text)
    return None


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count, where it came from, and what was seen of the machine."""

    threads: int
    source: str
    """``"--threads"`` (an explicit request), ``"OMP_NUM_THREADS"`` / ``"MKL_NUM_THREADS"``,
    ``"torch.set_num_threads"`` or ``"auto"`` (the free cores)."""
    cores: int
    """Cores this process may run on."""
    load: float | None
    """1-minute load average of the other processes (``None``: unknown)."""

    @property
    def suggested(self) -> int:
        """The count that fits beside the other processes' load (at least 1, at most the cores)."""
        free = self.cores - (self.load or 0.0)
        return max(1, min(self.cores, math.floor(free + SLACK)))

    @property
    def oversubscribed(self) -> bool:
        """More than one thread, and more than the cores hold beside the other processes' load."""
        return self.threads > 1 and self.threads + (self.load or 0.0) > self.cores + SLACK

    def warning(self) -> str | None:
        """One line saying what was seen and which ``--threads`` to use, when oversubscribed."""
        if not self.oversubscribed:
            return None
        seen = (f"the other processes keep {self.load:.1f} of the {self.cores} CPU cores busy (1-minute load "
                f"average)" if self.load else f"only {self.cores} CPU cores are available")
        origin = {"--threads": "--threads", "auto": "auto"}.get(self.source, f"from {self.source}")
        fix = (f"use --threads {self.suggested}" if self.source in ("--threads", "auto", "torch.set_num_threads")
               else f"use --threads {self.suggested} or set {self.source}={self.suggested}")
        return (f"{self.threads} CPU threads ({origin}) but {seen}: threads that wait for a core make PyTorch "
                f"much slower (up to 20x measured); {fix}")


def choose(threads: str | int = "auto") -> ThreadChoice:
    """The thread count for ``threads`` (``"auto"`` or a positive integer) and what it was based on."""
    import torch

    wanted = parse_threads(threads)
    cores, load = available_cores(), other_load()
    if wanted != "auto":
        return ThreadChoice(int(wanted), "--threads", cores, load)
    env = _env_threads()
    if env is not None:
        return ThreadChoice(env[1], env[0], cores, load)
    current = torch.get_num_threads()
    default = _physical_cores()  # PyTorch's default; where unknown, no call of set_num_threads is assumed
    if default is not None and current != default:
        return ThreadChoice(current, "torch.set_num_threads", cores, load)
    free = cores - (load or 0.0)
    n = max(1, min(cores, current, math.floor(free + SLACK)))
    return ThreadChoice(n, "auto", cores, load)


def choose_threads(threads: str | int) -> int:
    """The number of PyTorch intra-op CPU threads to use for ``threads`` (see the module text)."""
    return choose(threads).threads


@contextlib.contextmanager
def cpu_threads(threads: str | int, *, warn: Callable[[str], None] | None = None) -> Iterator[int]:
    """Run the block with :func:`choose_threads` ``(threads)`` PyTorch threads, then restore.

    Inside another ``cpu_threads`` block, ``"auto"`` (or the same count) keeps that block's count
    without a second warning. ``OMP_NUM_THREADS``
    and ``MKL_NUM_THREADS`` hold the count for processes started in the block. An oversubscribed
    choice is reported once through ``warn`` (default: a warning of the ``unifmir.threads`` logger).
    """
    import torch

    if _active and parse_threads(threads) in ("auto", _active[-1]):
        n = _active[-1]
    else:
        choice = choose(threads)
        n = choice.threads
        message = choice.warning()
        if message is not None:
            (warn or log.warning)(message)
    previous = torch.get_num_threads()
    saved = {name: os.environ.get(name) for name in ENV_VARS}
    torch.set_num_threads(n)
    os.environ.update({name: str(n) for name in ENV_VARS})
    _active.append(n)
    try:
        yield n
    finally:
        _active.pop()
        torch.set_num_threads(previous)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
