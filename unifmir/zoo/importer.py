"""Convert the official UniFMIR release's checkpoints into bioimage.io bundles."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Iterable

from unifmir._atomic import atomic_dir, check_writable, clean_stale
from unifmir.tasks import get_task
from unifmir.zoo.citations import cite_entries
from unifmir.zoo.official import OfficialModel, scan_release

__all__ = ["official_metadata", "import_release", "unzip_bundle", "check_official"]


def check_official(model: OfficialModel, path: Path) -> None:
    """Raise ``ValueError`` naming ``path`` unless it loads as ``model``'s task with finite weights
    (a file of another variant placed in the run folder, a truncated download, NaN weights)."""
    from unifmir.model.checkpoints import load_official
    from unifmir.predict.api import check_network

    try:
        net = load_official(path, task=model.task)
    except ValueError as err:
        raise ValueError(f"experiment/{model.run}: {err}") from None
    check_network(net, model.task, source=path)


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
    """Unpack a bundle zip next to it, atomically (:func:`unifmir._atomic.atomic_dir`: a staging
    folder that replaces ``folder`` only when complete; a killed run's staging folder is removed
    by the next one). An existing ``folder`` is replaced only with ``force``."""
    with atomic_dir(folder, overwrite=force) as stage:
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(stage)
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
    selected = {m: p for m, p in found.items() if wanted is None or m.run in wanted}
    out = Path(out)
    # every input and output is checked before the first bundle is written
    for model in selected:
        check_writable(out / f"{model.bundle_name}.zip", force)
        if folder:
            check_writable(out / model.bundle_name, force)
    for model, path in selected.items():
        check_official(model, path)
    out.mkdir(parents=True, exist_ok=True)
    clean_stale(out, force=True)  # staging files of a killed earlier import
    written: dict[str, Path] = {}
    for model, path in selected.items():
        net = load_official(path, task=model.task)
        zip_path = out / f"{model.bundle_name}.zip"
        export_model(net, model.task, zip_path, metadata=official_metadata(model), force=force, **export_kwargs)
        if folder:
            unzip_bundle(zip_path, out / model.bundle_name, force=force)
        written[model.bundle_name] = zip_path
    return written
