"""unifmir._threads: the thread count of ``auto``, explicit choices, and the oversubscription warning.

The machine is faked (cores, load average, PyTorch's default) so that the results do not depend on
the machine the tests run on; nothing is timed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Iterator

import pytest
import torch

from unifmir import _threads
from unifmir._threads import ThreadChoice, choose, choose_threads, cpu_threads, other_load, parse_threads


@pytest.fixture()
def machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, float]]:
    """A fake machine: ``cores`` (affinity), ``load`` (1-minute load average, this process's share
    0), PyTorch at its default of ``physical`` threads, no thread variables in the environment."""
    fake = {"cores": 4, "load": 0.0, "physical": 4}
    for name in _threads.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_threads, "available_cores", lambda: int(fake["cores"]))
    monkeypatch.setattr(_threads, "_physical_cores", lambda: int(fake["physical"]))
    monkeypatch.setattr(_threads, "_own_load", lambda: 0.0)
    monkeypatch.setattr(os, "getloadavg", lambda: (fake["load"], fake["load"], fake["load"]))
    before = torch.get_num_threads()
    torch.set_num_threads(4)  # PyTorch's default on the fake machine (a setting only; nothing runs)
    try:
        yield fake
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("text, value", [("auto", "auto"), (" AUTO ", "auto"), ("1", 1), ("12", 12), (3, 3)])
def test_parse_accepts_auto_and_positive_whole_numbers(text: str | int, value: str | int) -> None:
    assert parse_threads(text) == value


@pytest.mark.parametrize("text", ["0", "-2", "zero", "1.5", "", True, 0])
def test_parse_rejects_everything_else(text: str | int) -> None:
    with pytest.raises(ValueError, match="positive whole number"):
        parse_threads(text)


@pytest.mark.parametrize("load, threads", [(0.0, 4), (0.4, 4), (1.0, 3), (1.6, 2), (3.4, 1), (9.0, 1)])
def test_auto_uses_the_cores_the_other_processes_leave_free(machine: dict[str, float], load: float, threads: int) -> None:
    machine["load"] = load
    choice = choose("auto")
    assert (choice.threads, choice.source, choice.cores) == (threads, "auto", 4)
    assert choice.load == pytest.approx(load)
    assert choice.warning() is None  # auto's own choice never oversubscribes


def test_auto_never_exceeds_the_affinity_cores(machine: dict[str, float]) -> None:
    machine["cores"] = 2  # e.g. taskset / a container's CPU set on a 4-core machine
    assert choose_threads("auto") == 2


def test_explicit_environment_variable_wins_over_auto(machine: dict[str, float], monkeypatch: pytest.MonkeyPatch) -> None:
    machine["load"] = 9.0
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose("auto") == ThreadChoice(3, "OMP_NUM_THREADS", 4, 9.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "2,1")  # nested OpenMP syntax: the outer count
    assert choose_threads("auto") == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")  # not a count: ignored, as PyTorch ignores it
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    assert choose("auto").source == "MKL_NUM_THREADS"
    assert choose("3") == ThreadChoice(3, "--threads", 4, 9.0)  # --threads N wins over everything


def test_explicit_torch_set_num_threads_is_kept(machine: dict[str, float]) -> None:
    machine["load"] = 3.0
    torch.set_num_threads(3)  # differs from PyTorch's default (4 physical cores): the program chose it
    choice = choose("auto")
    assert (choice.threads, choice.source) == (3, "torch.set_num_threads")
    assert choice.oversubscribed and "--threads 1" in (choice.warning() or "")


def test_unknown_torch_default_falls_back_to_the_load(machine: dict[str, float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_threads, "_physical_cores", lambda: None)  # no /proc/cpuinfo (macOS, Windows)
    machine["load"] = 3.0
    torch.set_num_threads(3)
    assert choose("auto") == ThreadChoice(1, "auto", 4, 3.0)


def test_other_load_subtracts_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    monkeypatch.setattr(_threads, "_own_load", lambda: 0.5)
    assert other_load() == pytest.approx(1.0)
    monkeypatch.setattr(_threads, "_own_load", lambda: 2.0)
    assert other_load() == 0.0


def test_own_load_and_physical_cores_are_plausible() -> None:
    own = _threads._own_load()  # the CPU use of this process: between none and all cores
    assert 0.0 <= own <= (os.cpu_count() or 1)
    physical = _threads._physical_cores()
    if os.path.exists("/proc/cpuinfo"):
        assert physical is not None and 1 <= physical <= (os.cpu_count() or 1)


def test_oversubscription_warns_once_with_the_value_to_use(machine: dict[str, float]) -> None:
    machine.update(cores=2, load=3.0)
    said: list[str] = []
    with cpu_threads(2, warn=said.append) as n:
        assert n == 2 and torch.get_num_threads() == 2
        with cpu_threads("auto", warn=said.append) as inner:  # nested: keeps the count, no second warning
            assert inner == 2
    assert len(said) == 1
    assert "2 CPU threads (--threads)" in said[0] and "3.0 of the 2 CPU cores" in said[0]
    assert said[0].endswith("use --threads 1") and "\n" not in said[0]


def test_no_warning_when_the_threads_fit_or_only_one_is_used(machine: dict[str, float]) -> None:
    machine.update(cores=2, load=0.2)
    said: list[str] = []
    with cpu_threads(2, warn=said.append):
        pass
    machine["load"] = 5.0
    with cpu_threads(1, warn=said.append), cpu_threads("auto", warn=said.append):
        pass
    assert said == []


def test_more_threads_than_cores_warns_even_when_idle(machine: dict[str, float], monkeypatch: pytest.MonkeyPatch) -> None:
    machine.update(cores=2, load=0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    message = choose("auto").warning() or ""
    assert "8 CPU threads (from OMP_NUM_THREADS)" in message and "only 2 CPU cores" in message
    assert message.endswith("use --threads 2 or set OMP_NUM_THREADS=2")


def test_warning_goes_to_the_logger_by_default(machine: dict[str, float], caplog: pytest.LogCaptureFixture) -> None:
    machine.update(cores=2, load=3.0)
    with caplog.at_level(logging.WARNING, logger="unifmir.threads"), cpu_threads(2):
        pass
    assert [r.getMessage().endswith("use --threads 1") for r in caplog.records] == [True]


def test_cpu_threads_sets_subprocess_threads_and_restores(machine: dict[str, float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
        seen = subprocess.run([sys.executable, "-c", "import os; print(os.environ['OMP_NUM_THREADS'], "
                               "os.environ['MKL_NUM_THREADS'])"], capture_output=True, text=True, check=True)
        assert seen.stdout.split() == ["1", "1"]
    assert torch.get_num_threads() == before
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "3"


def test_old_import_names_still_work() -> None:
    from unifmir.training import demo

    assert demo.choose_threads is choose_threads and demo.cpu_threads is cpu_threads
