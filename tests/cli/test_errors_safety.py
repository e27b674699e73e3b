"""No user file is ever destroyed, and no partial result is left (classes 4 and 5 of issue 15).

* ``predict --overwrite`` refuses to replace any of its inputs; ``export --force`` its model;
* ``synth --overwrite`` replaces only a folder that synth made (marker file), keeping other files;
* a run or report never writes into the user's dataset folder;
* with several inputs, every input is validated before the first output is written;
* ``fetch-official`` reuses an unpacked folder only when it came from the same archive.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile

from .clitestlib import assert_refused, cli

# ---------------------------------------------------------------------------------------------
# inputs are never outputs


def test_predict_overwrite_never_replaces_an_input(world, watch, capsys) -> None:
    out = world / "results"
    out.mkdir()
    shutil.copy(world / "img.tif", out / "cell.ome.tif")  # an input that lives where its output would go
    w = watch()
    res = cli(["predict", "--model", "sr.pt", "--input", out / "cell.ome.tif", "--output", out, "--overwrite"], capsys)
    assert_refused(res, "would replace the input", "cell.ome.tif", "never replaces an input", "--output")
    w.assert_unchanged()


def test_predict_overwrite_never_replaces_an_input_through_a_link(world, watch, capsys) -> None:
    out = world / "results"
    out.mkdir()
    (out / "other.ome.tif").symlink_to(world / "img.tif")  # output name = a link to an input
    w = watch()
    res = cli(["predict", "--model", "sr.pt", "--input", "img.tif", out / "other.ome.tif", "--output", out,
               "--overwrite"], capsys)
    assert_refused(res, "would replace the input")
    w.assert_unchanged()


def test_export_force_never_replaces_its_model(world, watch, capsys) -> None:
    shutil.copy(world / "sr.pt", world / "model.zip")
    w = watch()
    res = cli(["export", "--model", "model.zip", "--out", "model.zip", "--force"], capsys)
    assert_refused(res, "would replace the input", "model.zip")
    w.assert_unchanged()


def test_training_never_writes_into_the_dataset(world, watch, capsys) -> None:
    w = watch()
    res = cli(["finetune", "--task", "sr", "--data", "ds_sr", "--out", "ds_sr/run", "--steps", "1"], capsys)
    assert_refused(res, "lies inside the dataset folder", "outside")
    res = cli(["evaluate", "--model", "sr.pt", "--data", "ds_sr", "--out", "ds_sr"], capsys)
    assert_refused(res, "lies inside the dataset folder")
    w.assert_unchanged()


# ---------------------------------------------------------------------------------------------
# synth --overwrite


def test_synth_overwrite_refuses_a_users_dataset(world, watch, capsys) -> None:
    mine = world / "ds_mine"
    shutil.copytree(world / "ds_sr", mine)
    (mine / ".unifmir-synth").unlink()  # the user's own data: same layout, not made by synth
    w = watch()
    res = cli(["synth", "--task", "sr", "--n", "2", "--size", "16", "--out", mine, "--overwrite"], capsys)
    assert_refused(res, str(mine), "was not written by `unifmir synth`", "never your own files",
                   "choose another --out")
    w.assert_unchanged()


def test_synth_overwrite_replaces_only_its_own_dataset(world, capsys) -> None:
    ds = world / "ds_sr"
    (ds / "notes.txt").write_text("my notes")
    old = sorted(p.name for p in (ds / "train" / "input").iterdir())
    res = cli(["synth", "--task", "sr", "--n", "5", "--size", "16", "--out", ds, "--overwrite", "--quiet"], capsys)
    assert res.rc == 0, res.err
    assert (ds / "notes.txt").read_text() == "my notes"
    assert sorted(p.name for p in (ds / "train" / "input").iterdir()) != old
    assert not [p for p in ds.iterdir() if p.name.endswith(".tmp")]


def test_synth_without_overwrite_keeps_an_earlier_dataset(world, watch, capsys) -> None:
    w = watch()
    res = cli(["synth", "--task", "sr", "--n", "2", "--out", "ds_sr"], capsys)
    assert_refused(res, "ds_sr", "--overwrite")
    w.assert_unchanged()


# ---------------------------------------------------------------------------------------------
# every input validated before the first output


@pytest.mark.parametrize("fault", ["nan", "rgb", "missing", "text"])
def test_predict_validates_every_input_before_writing(world, watch, capsys, fault) -> None:
    bad = world / "z_bad.tif"
    if fault == "nan":
        a = np.random.default_rng(0).random((24, 20)).astype(np.float32)
        a[3, 3] = np.nan
        tifffile.imwrite(bad, a)
    elif fault == "rgb":
        tifffile.imwrite(bad, np.zeros((24, 20, 3), np.uint8))
    elif fault == "text":
        bad.write_text("hello")
    w = watch()
    res = cli(["predict", "--model", "sr.pt", "--input", "img.tif", bad, "--output", "out", "--quiet"], capsys)
    assert_refused(res, "z_bad.tif")
    assert not (world / "out").exists(), "an output was written before the bad input was found"
    w.assert_unchanged()


# ---------------------------------------------------------------------------------------------
# fetch-official: verify before reusing an unpacked folder


def _archive(content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("experiment/SwinIRCCPs/model_best.pt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@pytest.fixture()
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        payload = b""

        def do_GET(self):  # noqa: N802
            body = type(self).payload
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/model.tgz", Handler
    httpd.shutdown()


@pytest.fixture()
def no_release_check(monkeypatch):
    """The archive reuse logic is under test, not the nine checkpoints: accept any unpacked folder."""
    import unifmir.zoo.fetch as fetch

    monkeypatch.setattr(fetch, "verify_release", lambda root, **k: fetch.ReleaseCheck(root=Path(root)))


def _unpacked(cache: Path) -> bytes:
    return (cache / "official" / "model" / "experiment" / "SwinIRCCPs" / "model_best.pt").read_bytes()


def test_fetch_does_not_reuse_a_folder_unpacked_from_a_bad_archive(world, server, no_release_check, capsys) -> None:
    url, handler = server
    cache = world / "cache"
    bad, good = _archive(b"tampered weights"), _archive(b"genuine weights")
    good_sha = hashlib.sha256(good).hexdigest()
    handler.payload = bad
    assert cli(["fetch-official", "--url", url, "--cache", cache, "--no-progress"], capsys).rc == 0
    assert _unpacked(cache) == b"tampered weights"
    # the checksum fails on the cached (bad) download: it is deleted, and so is what came from it
    res = cli(["fetch-official", "--url", url, "--cache", cache, "--no-progress", "--sha256", good_sha], capsys)
    assert_refused(res, "does not match the expected", "run the command again")
    assert not (cache / "downloads" / "model.tgz").exists() and not (cache / "official" / "model").exists()
    handler.payload = good
    res = cli(["fetch-official", "--url", url, "--cache", cache, "--no-progress", "--sha256", good_sha], capsys)
    assert res.rc == 0, res.err
    assert _unpacked(cache) == b"genuine weights"


def test_fetch_unpacks_again_when_the_archive_changed(world, server, no_release_check, capsys) -> None:
    url, handler = server
    cache = world / "cache"
    handler.payload = _archive(b"first")
    assert cli(["fetch-official", "--url", url, "--cache", cache, "--no-progress"], capsys).rc == 0
    (cache / "downloads" / "model.tgz").write_bytes(_archive(b"second"))  # e.g. replaced by hand
    assert cli(["fetch-official", "--url", url, "--cache", cache, "--no-progress"], capsys).rc == 0
    assert _unpacked(cache) == b"second"
    assert [p.name for p in (cache / "official").iterdir()] == ["model"]  # no staging folder left
