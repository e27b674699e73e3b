"""Fault tests, one per writer: SIGKILL in the middle of a write (issue 15, class 5).

A subprocess runs the real command with ``os.fsync`` wrapped so that the process kills itself
(``SIGKILL``, no clean-up possible) when it flushes the chosen file: the new content is then
complete on disk but not yet renamed onto its final name, the latest moment a kill can hit. The
test checks that the previous file (or dataset, or folder) is intact, that the killed run left its
temporary file behind (so the kill did hit the write), and that the next run removes it and
succeeds.
"""

from __future__ import annotations

import json
import shutil
import signal
import zipfile
from pathlib import Path

import pytest

from .clitestlib import REPO, cli, temp_debris, tree

KILLER = """
import os, signal, sys
target = sys.argv[1]
real = os.fsync

def fsync(fd):
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        path = ""
    if f"/.{target}." in path:
        os.kill(os.getpid(), signal.SIGKILL)
    real(fd)

os.fsync = fsync
sys.argv = sys.argv[1:]
exec(compile(sys.argv[1], "<writer>", "exec"))
"""


def _killed(cwd: Path, target: str, code: str) -> None:
    """Run ``code`` (Python) in a subprocess that SIGKILLs itself when it flushes ``.target.*``."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", KILLER, target, code], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=_env(cwd))
    assert proc.returncode == -signal.SIGKILL, f"not killed (rc {proc.returncode}):\n{proc.stderr[-3000:]}"


def _env(cwd: Path) -> dict[str, str]:
    import os

    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", UNIFMIR_CACHE=str(cwd / ".cache"))


def _cli_code(*argv: str) -> str:
    return f"from unifmir.cli import main; sys.exit(main({list(map(str, argv))!r}))"


def test_kill_while_predict_writes_an_output(world, capsys) -> None:
    argv = ["predict", "--model", "sr.pt", "--input", "img.tif", "--output", "out", "--quiet", "--overwrite"]
    assert cli(argv, capsys).rc == 0
    before = (world / "out" / "img.ome.tif").read_bytes()
    _killed(world, "img.ome.tif", _cli_code(*argv))
    assert (world / "out" / "img.ome.tif").read_bytes() == before
    assert temp_debris([world / "out"]), "the kill did not hit the write"
    assert cli(argv, capsys).rc == 0  # the next run
    assert not temp_debris([world / "out"])
    assert sorted(p.name for p in (world / "out").iterdir()) == ["img.ome.tif"]


def test_kill_while_synth_writes_a_dataset(world, capsys) -> None:
    ds = world / "ds_sr"
    before = tree(ds)
    argv = ["synth", "--task", "sr", "--n", "4", "--size", "16", "--seed", "9", "--out", ds, "--overwrite", "--quiet"]
    _killed(world, "unifmir-synth", _cli_code(*argv))
    after = tree(ds)
    assert {k: v for k, v in after.items() if k in before} == before  # the earlier dataset is intact
    assert temp_debris([ds])
    assert cli(argv, capsys).rc == 0
    assert not temp_debris([ds])
    assert len(list((ds / "train" / "input").iterdir())) == 3


@pytest.fixture(scope="module")
def run_dir(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from unifmir.cli import main

    out = tmp_path_factory.mktemp("kill-run") / "run"
    assert main(["finetune", "--task", "sr", "--data", str(assets / "ds_sr"), "--out", str(out), "--steps", "1",
                 "--quiet", "--patch-size", "16", "--batch-size", "1", "--device", "cpu"]) == 0
    return out


@pytest.mark.parametrize("target", ["train_state.pt", "last.pt", "config.yaml", "log.csv"])
def test_kill_while_training_writes_a_resume_point(world, run_dir, capsys, target) -> None:
    from unifmir.training.checkpointing import load_train_state

    run = world / "run"
    shutil.copytree(run_dir, run)
    before = (run / target).read_bytes()
    argv = ["finetune", "--resume", run, "--steps", "2", "--quiet"]
    _killed(world, target, _cli_code(*argv))
    assert (run / target).read_bytes() == before
    assert temp_debris([run])
    assert load_train_state(run / "train_state.pt")["step"] in (1, 2)  # a consistent resume point
    assert cli(argv, capsys).rc == 0  # the next run resumes and cleans up
    assert not temp_debris([run])
    assert load_train_state(run / "train_state.pt")["step"] == 2


def test_kill_while_evaluate_writes_its_report(world, capsys) -> None:
    argv = ["evaluate", "--model", "sr.pt", "--data", "ds_sr", "--out", "ev", "--overwrite", "--no-baselines"]
    assert cli(argv, capsys).rc == 0
    before = (world / "ev" / "evaluation.csv").read_bytes()
    _killed(world, "evaluation.csv", _cli_code(*argv))
    assert (world / "ev" / "evaluation.csv").read_bytes() == before
    assert temp_debris([world / "ev"])
    assert cli(argv, capsys).rc == 0
    assert not temp_debris([world / "ev"])


def test_kill_while_a_bundle_folder_is_unpacked(world) -> None:
    from unifmir.zoo.importer import unzip_bundle

    with zipfile.ZipFile(world / "b.zip", "w") as z:
        z.writestr("rdf.yaml", "new: 1\n")
    (world / "b").mkdir()
    (world / "b" / "rdf.yaml").write_text("old: 1\n")
    code = "from pathlib import Path; from unifmir.zoo.importer import unzip_bundle; unzip_bundle(Path('b.zip'), Path('b'), force=True)"
    _killed(world, "b", code)
    assert (world / "b" / "rdf.yaml").read_text() == "old: 1\n"
    assert temp_debris([world])
    unzip_bundle(world / "b.zip", world / "b", force=True)
    assert (world / "b" / "rdf.yaml").read_text() == "new: 1\n" and not temp_debris([world])


def test_kill_while_the_release_is_unpacked(world) -> None:
    import io
    import tarfile

    from unifmir.zoo.fetch import unpack

    def archive(path: Path, content: bytes) -> Path:
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo("experiment/SwinIRCCPs/model_best.pt")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        return path

    unpack(archive(world / "a.tgz", b"old"), world / "official" / "model")
    archive(world / "a.tgz", b"new")
    code = "from pathlib import Path; from unifmir.zoo.fetch import unpack; unpack(Path('a.tgz'), Path('official/model'))"
    _killed(world, "model", code)
    ckpt = world / "official" / "model" / "experiment" / "SwinIRCCPs" / "model_best.pt"
    assert ckpt.read_bytes() == b"old"
    assert temp_debris([world / "official"])
    unpack(world / "a.tgz", world / "official" / "model")
    assert ckpt.read_bytes() == b"new" and not temp_debris([world / "official"])


def test_kill_while_a_zoo_step_record_is_written(world) -> None:
    from unifmir.zoo.build import _Steps

    steps = _Steps(world / "steps")
    steps.put("model-x", {"v": 1})
    code = "from pathlib import Path; from unifmir.zoo.build import _Steps; _Steps(Path('steps')).put('model-x', {'v': 2})"
    _killed(world, "model-x.json", code)
    assert json.loads((world / "steps" / "model-x.json").read_text()) == {"v": 1}
    assert temp_debris([world / "steps"])
    import unifmir._atomic as atomic

    atomic._CLEANED.clear()  # the next run is a new process
    _Steps(world / "steps").put("model-x", {"v": 3})
    assert not temp_debris([world / "steps"])


def test_sigterm_removes_temporary_files(world) -> None:
    """SIGTERM (e.g. a cluster's time limit) is handled like Ctrl-C: clean-up runs, exit code 130."""
    import subprocess
    import sys
    import time

    ds = world / "big"
    proc = subprocess.Popen([sys.executable, "-m", "unifmir", "synth", "--task", "sr", "--n", "400", "--size", "32",
                             "--out", str(ds)], cwd=world, env=_env(world), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not temp_debris([ds] if ds.exists() else []):
        time.sleep(0.05)
    assert temp_debris([ds]), "synth did not start"
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not temp_debris([ds])
