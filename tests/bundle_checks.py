"""Checks of a bioimage.io bundle that users run outside Python: ``bioimageio test`` and
``bioimageio predict`` from the shell, and the TorchScript file in libtorch 2.0.0 (deepImageJ).

Shared by the export tests (fresh bundles) and the committed-suite tests (``zoo_models/``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

BIOIMAGEIO = shutil.which("bioimageio") or str(Path(sys.executable).with_name("bioimageio"))


def _run(cmd: list[str], cwd: Path, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def assert_shell_test_passes(bundle: Path, workdir: Path, weight_format: str = "all") -> None:
    """``bioimageio test BUNDLE`` exits 0 and its summary says passed.

    ``weight_format`` limits the shell run to one format where the same bundle's export already
    ran ``test_model`` on every format in process (the export tests): the shell entry point is
    then what is tested, at a third of the cost. Committed bundles are tested on ``all``.
    """
    summary_md = workdir / "bioimageio-test-summary.md"
    res = _run([BIOIMAGEIO, "test", str(bundle), "--devices", "cpu", "--weight-format", weight_format,
                "--summary", str(summary_md)], workdir)
    summary = summary_md.read_text() if summary_md.exists() else ""
    assert res.returncode == 0 and "| status          | passed" in summary, res.stdout[-3000:] + res.stderr[-3000:]


def shell_predict(bundle: Path, image: Path, workdir: Path) -> np.ndarray:
    """``bioimageio predict BUNDLE --inputs IMAGE``; returns the one output TIFF (squeezed)."""
    import tifffile

    out_dir = workdir / "bioimageio-predict"
    res = _run([BIOIMAGEIO, "predict", str(bundle), "--inputs", str(image),
                "--outputs", str(out_dir / "{sample_id}_{output_id}.tif")], workdir)
    outs = list(out_dir.glob("*.tif"))
    assert res.returncode == 0 and len(outs) == 1, res.stdout[-3000:] + res.stderr[-3000:]
    return np.squeeze(tifffile.imread(outs[0]))


def assert_libtorch_reproduces_test_output(folder: Path) -> None:
    """libtorch 2.0.0 runs the TorchScript file of the unpacked bundle ``folder`` on the
    preprocessed test input and reproduces the test output (our bundles have no postprocessing
    beyond ``ensure_dtype``)."""
    from bioimageio.core import create_prediction_pipeline, load_model_description
    from bioimageio.core.digest_spec import get_test_inputs, get_test_outputs

    from unifmir.export.libtorch_check import check_torchscript, ensure_libtorch

    ensure_libtorch()
    descr = load_model_description(folder / "rdf.yaml")
    post = {p.id for p in descr.outputs[0].postprocessing}
    assert post <= {"ensure_dtype"}, f"the check assumes no postprocessing beyond ensure_dtype, got {post}"
    ts = descr.weights.torchscript
    assert ts is not None, f"{folder.name}: no TorchScript weights"
    pp = create_prediction_pipeline(descr, devices=["cpu"], weight_format="torchscript")
    sample = get_test_inputs(descr)
    pp.apply_preprocessing(sample)  # the TorchScript file sees the input after the preprocessing
    x = np.asarray(sample.members[descr.inputs[0].id].data, dtype=np.float32)
    y = np.asarray(get_test_outputs(descr).members[descr.outputs[0].id].data, dtype=np.float32)
    res = check_torchscript(folder / str(ts.source), [x], [y], atol=1.5e-4, rtol=1e-4)
    assert res.ok, f"{folder.name}: {res.message}"


def committed_bundle(rid: str, workdir: Path) -> tuple[Path, Path]:
    """``(zip, folder)`` of the committed suite bundle ``rid`` (``zoo_models/``); whichever form is
    not committed is built in ``workdir`` from the other."""
    import zipfile

    zoo = Path(__file__).resolve().parents[1] / "zoo_models"
    zp, folder = zoo / f"{rid}.zip", zoo / rid
    assert zp.is_file() or (folder / "rdf.yaml").is_file(), f"no committed bundle {rid} in {zoo}"
    if not zp.is_file():
        zp = workdir / f"{rid}.zip"
        with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(folder.iterdir()):
                z.write(f, f.name)
    if not (folder / "rdf.yaml").is_file():
        folder = workdir / rid
        with zipfile.ZipFile(zp) as z:
            z.extractall(folder)
    return zp, folder
