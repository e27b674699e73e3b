"""Convert the official UniFMIR release's checkpoints into bioimage.io bundles."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any, Iterable

from unifmir.tasks import get_task
from unifmir.zoo.citations import cite_entries
from unifmir.zoo.official import OfficialModel, scan_release

__all__ = ["official_metadata", "import_release", "unzip_bundle"]


def official_metadata(model: OfficialModel) -> dict[str, Any]:
    """bioimage.io metadata for one released checkpoint (task, dataset and citations from the catalogue)."""
    spec = get_task(model.task)
    return {
        "name": f"UniFMIR {spec.title} - {model.structure} (official release)",
        "description": (
            f"The UniFMIR network fine-tuned by its authors for {spec.title} on {model.dataset} "
            f"({model.structure}); weights from the UniFMIR GitHub release 2023.10.05 "
            f"(experiment/{model.run}/{model.filename}), converted by unifmir."
        ),
        "authors": [{"name": "Chenxi Ma"}, {"name": "Weimin Tan"}, {"name": "Ruian He"}, {"name": "Bo Yan"}],
        "cite": cite_entries(*model.cite, "unifmir-data"),
        # the upstream repository states no licence for its code or weights: do not invent one
        "license": None,
        "license_note": "The UniFMIR authors state no licence for these weights (github.com/cxm12/UNiFMIR has "
                        "no licence file); ask them before redistributing or using them commercially.",
        "git_repo": "https://github.com/cxm12/UNiFMIR",
        "tags": ["unifmir", "swinir", "fluorescence-light-microscopy", spec.name, model.structure.lower(),
                 "official-release"],
        "training_data": f"{model.dataset} (the UniFMIR authors' preprocessed data, Zenodo doi 10.5281/zenodo.8401470).",
        "training_recipe": "Pretrained as the multi-task UniFMIR model, then fine-tuned per task by the "
                           "UniFMIR authors (Ma et al., Nature Methods 2024).",
    }


def unzip_bundle(zip_path: Path, folder: Path, force: bool = False) -> Path:
    """Unpack a bundle zip next to it (atomically: temporary folder, then rename)."""
    if folder.exists():
        if not force:
            raise FileExistsError(f"{folder} already exists; pass --force to replace it")
        shutil.rmtree(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tmp)
    tmp.rename(folder)
    return folder


def import_release(release: str | Path, out: str | Path, *, only: Iterable[str] | None = None,
                   folder: bool = False, force: bool = False, **export_kwargs: Any) -> dict[str, Path]:
    """Export every released checkpoint found under ``release`` into ``out/<bundle>.zip``.

    ``only`` restricts the conversion to the given run names. Each bundle goes through every
    gate of :func:`unifmir.export.bundle.export_model`; a failing model raises and leaves no
    bundle for it (bundles already written stay). Returns bundle name -> path.
    """
    from unifmir.export.bundle import export_model
    from unifmir.model.checkpoints import load_official

    found = scan_release(release)
    wanted = set(only) if only else None
    if wanted is not None:
        unknown = wanted - {m.run for m in found}
        if unknown:
            raise ValueError(f"run(s) {sorted(unknown)} not found in {release}; found: {sorted(m.run for m in found)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for model, path in found.items():
        if wanted is not None and model.run not in wanted:
            continue
        net = load_official(path, task=model.task)
        zip_path = out / f"{model.bundle_name}.zip"
        export_model(net, model.task, zip_path, metadata=official_metadata(model), force=force, **export_kwargs)
        if folder:
            unzip_bundle(zip_path, out / model.bundle_name, force=force)
        written[model.bundle_name] = zip_path
    return written
