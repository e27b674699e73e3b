"""`unifmir export` (``unifmir.cli.export``): user errors are one-line messages with exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def test_cli_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from unifmir.cli import main

    assert main(["export", "--model", str(tmp_path / "nope.pt"), "--task", "sr", "--out", str(tmp_path / "a.zip")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    ck = tmp_path / "c.pt"
    ck.write_bytes(b"x")
    assert main(["export", "--model", str(ck), "--task", "sr", "--out", str(tmp_path / "a.txt")]) == 2
    assert "must end in .zip" in capsys.readouterr().err
