"""The official UniFMIR release (GitHub release ``2023.10.05`` of cxm12/UNiFMIR), described as data.

``model.tgz`` unpacks to ``experiment/<run name>/model_best*.pt``; each file is a bare
single-task ``state_dict`` (see ``tests/fixtures/unifmir-reference/README.txt``). The run
names, checkpoint file names and the task each model serves are those used by the reference's
``app.py``; the datasets are the ones the paper fine-tuned on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["OfficialModel", "OFFICIAL_MODELS", "RELEASE_URL", "find_checkpoint", "scan_release"]

RELEASE_TAG = "2023.10.05"
RELEASE_URL = f"https://github.com/cxm12/UNiFMIR/releases/download/{RELEASE_TAG}/model.tgz"


@dataclass(frozen=True)
class OfficialModel:
    """One released fine-tuned checkpoint."""

    run: str
    """Directory name under ``experiment/``."""
    filename: str
    """Checkpoint file inside the run directory."""
    task: str
    """Task in :data:`unifmir.tasks.TASKS`."""
    variant: str
    """Released single-task class (key-manifest variant)."""
    dataset: str
    """Dataset the model was fine-tuned on."""
    structure: str
    """Biological structure / sample, for names and documentation."""
    cite: tuple[str, ...]
    """Keys of :data:`unifmir.zoo.citations.CITATIONS`."""
    pixel_note: str = ""

    @property
    def bundle_name(self) -> str:
        """File-system friendly bundle name, e.g. ``unifmir-official-sr-ccps``."""
        slug = self.structure.lower().replace(" ", "-").replace("_", "-")
        return f"unifmir-official-{self.task}-{slug}"


OFFICIAL_MODELS: tuple[OfficialModel, ...] = (
    OfficialModel("SwinIRCCPs", "model_best.pt", "sr", "swinir_x2_in1", "BioSR", "CCPs", ("unifmir", "biosr")),
    OfficialModel("SwinIRER", "model_best147.pt", "sr", "swinir_x2_in1", "BioSR", "ER", ("unifmir", "biosr")),
    OfficialModel("SwinIRF-actin", "model_best181.pt", "sr", "swinir_x2_in1", "BioSR", "F-actin", ("unifmir", "biosr")),
    OfficialModel(
        "SwinIRMicrotubules", "model_best.pt", "sr", "swinir_x2_in1", "BioSR", "Microtubules", ("unifmir", "biosr")
    ),
    OfficialModel(
        "SwinIRDenoising_Planaria", "model_best.pt", "denoise", "swinir_x1_in1", "CARE Denoising_Planaria",
        "Planaria", ("unifmir", "care"),
    ),
    OfficialModel(
        "SwinIRmto1Denoising_Tribolium", "model_best.pt", "denoise", "swinir_x1_in5", "CARE Denoising_Tribolium",
        "Tribolium", ("unifmir", "care"),
    ),
    OfficialModel(
        "SwinIRIsotropic_Liver", "model_best465.pt", "isotropic", "swinir_x1_in1", "CARE Isotropic_Liver",
        "Liver", ("unifmir", "care"),
    ),
    OfficialModel(
        "SwinIRproj2stg_enlcn_2npzProjection_Flywing", "model_best6.pt", "projection", "swinirProj_stage2",
        "CARE Projection_Flywing", "Flywing", ("unifmir", "care"),
    ),
    OfficialModel(
        "SwinIR2t3_stage2VCD", "model_best17.pt", "volumetric", "swinir2dto3d", "VCD-Net light-field data",
        "VCD", ("unifmir", "vcd"),
    ),
)


def find_checkpoint(release_dir: str | Path, model: OfficialModel) -> Path | None:
    """Locate ``model``'s checkpoint under ``release_dir``.

    Accepts the archive's own layout (``experiment/<run>/<file>``), a directory that already is
    ``experiment/``, and, when the file was renamed, any single ``*.pt`` in the run directory.
    """
    root = Path(release_dir)
    for base in (root / "experiment", root, *root.glob("*/experiment")):
        run_dir = base / model.run
        if (run_dir / model.filename).is_file():
            return run_dir / model.filename
        if run_dir.is_dir():
            candidates = sorted(run_dir.rglob("*.pt"))
            if len(candidates) == 1:
                return candidates[0]
    return None


def scan_release(release_dir: str | Path) -> dict[OfficialModel, Path]:
    """Return the released checkpoints found under ``release_dir`` (possibly a subset).

    Raises ``FileNotFoundError`` naming the expected layout when none is found.
    """
    found = {m: p for m in OFFICIAL_MODELS if (p := find_checkpoint(release_dir, m)) is not None}
    if not found:
        expected = ", ".join(f"experiment/{m.run}/{m.filename}" for m in OFFICIAL_MODELS[:2])
        raise FileNotFoundError(
            f"no UniFMIR release checkpoints under {release_dir}; expected files such as {expected} "
            "(unpack model.tgz of the 2023.10.05 release there, or run `unifmir fetch-official`)"
        )
    return found
