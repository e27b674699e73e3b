"""`fetch_official` against a loopback HTTP server serving a release built from the fixtures."""

from __future__ import annotations

import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest
import torch

from unifmir.zoo.fetch import FetchError, download, fetch_official, unpack, verify_release
from unifmir.zoo.official import OFFICIAL_MODELS, scan_release

import compact  # tests/fixtures/compact.py (put on sys.path by tests/conftest.py)

# Which fixture file stands in for each released variant.
FIXTURE_FOR_VARIANT = {
    "swinir_x2_in1": "swinir_x2_in1.pt",
    "swinir_x1_in1": "swinir_x1_in1.pt",
    "swinir_x1_in5": "swinir_x1_in5.pt",
    "swinirProj_stage2": "swinirProj_stage2_small.pt",
    "swinir2dto3d": "swinir2dto3d.pt",
}


def make_release(reference_dir: Path, dest: Path, models=OFFICIAL_MODELS) -> Path:
    """Write ``experiment/<run>/<file>`` bare state_dicts (the release format) under ``dest``."""
    cache: dict[str, dict] = {}
    for m in models:
        name = FIXTURE_FOR_VARIANT[m.variant]
        if name not in cache:
            cache[name] = compact.rebuild_state_dict(torch.load(reference_dir / name))
        path = dest / "experiment" / m.run / m.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(cache[name], path)
    return dest


def make_archive(release: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(release / "experiment", arcname="experiment")
    return archive


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    ranges_seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server API)
        data = self.payload
        rng = self.headers.get("Range")
        if rng:
            type(self).ranges_seen.append(rng)
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture(scope="module")
def release_archive(tmp_path_factory, reference_dir) -> bytes:
    tmp = tmp_path_factory.mktemp("release")
    release = make_release(reference_dir, tmp / "src")
    return make_archive(release, tmp / "model.tgz").read_bytes()


@pytest.fixture()
def server(release_archive):
    handler = type("Handler", (_RangeHandler,), {"payload": release_archive, "ranges_seen": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/model.tgz", handler
    httpd.shutdown()


def test_fetch_downloads_unpacks_and_verifies(server, tmp_path, release_archive):
    url, _ = server
    root = fetch_official(url, cache=tmp_path, progress=False)
    found = scan_release(root)
    assert set(found) == set(OFFICIAL_MODELS)
    assert (tmp_path / "downloads" / "model.tgz").read_bytes() == release_archive
    # a second call is served from the cache
    assert fetch_official(url, cache=tmp_path, progress=False) == root


def test_download_resumes_a_partial_file(server, tmp_path, release_archive):
    url, handler = server
    dest = tmp_path / "model.tgz"
    part = dest.with_name("model.tgz.part")
    part.write_bytes(release_archive[:1000])
    download(url, dest, progress=False)
    assert dest.read_bytes() == release_archive
    assert handler.ranges_seen == ["bytes=1000-"]
    assert not part.exists()


def test_sha256_mismatch_is_reported_and_the_download_removed(server, tmp_path):
    url, _ = server
    with pytest.raises(FetchError, match="sha256"):
        fetch_official(url, cache=tmp_path, progress=False, sha256="0" * 64)
    assert not (tmp_path / "downloads" / "model.tgz").exists()


def test_unreachable_server_gives_clear_error(tmp_path):
    with pytest.raises(FetchError, match="cannot reach"):
        download("http://127.0.0.1:9/model.tgz", tmp_path / "m.tgz", progress=False, timeout=2)


def test_incomplete_or_damaged_release_is_rejected(tmp_path, reference_dir):
    release = make_release(reference_dir, tmp_path / "rel", models=OFFICIAL_MODELS[:3])
    bad = release / "experiment" / OFFICIAL_MODELS[0].run / OFFICIAL_MODELS[0].filename
    bad.write_bytes(b"not a checkpoint")
    report = verify_release(release)
    assert not report.ok
    assert len(report.missing) == len(OFFICIAL_MODELS) - 3
    assert str(bad) in report.problems


def test_unpack_refuses_path_traversal(tmp_path):
    archive = tmp_path / "evil.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        data = b"x"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(FetchError):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out").exists()
