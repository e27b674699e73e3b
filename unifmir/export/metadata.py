"""The bioimage.io description's content: what a bundle claims and how it is described.

* :func:`consumer_support` - which consumers run the bundle (its tags and README claims);
* :func:`model_descr` - the ``ModelDescr`` of the staged files (authors, citations, true tags,
  ``config.bioimageio``/``deepimagej``/``unifmir``);
* :func:`consumer_rdf` / :func:`consumer_rdf_in_zip` - the rdf.yaml as every consumer reads it.

:mod:`unifmir.export.bundle` runs the stages; this module holds no stage and runs no network.
"""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from torch import nn

from unifmir.export import describe as D
from unifmir.export import docs, gates
from unifmir.model.network import network_config
from unifmir.tasks import TaskSpec

if TYPE_CHECKING:
    from bioimageio.spec.model import v0_5

__all__ = [
    "CONSUMER_FORMAT_VERSION", "WEIGHTS_ORDER", "consumer_support", "model_descr", "unifmir_config", "nickname",
    "citations", "tags", "consumer_rdf", "consumer_rdf_in_zip",
]

WEIGHTS_ORDER: tuple[gates.ExportedFormat, ...] = ("torchscript", "pytorch_state_dict", "onnx")
"""Weight formats in the order the rdf lists them (deepImageJ takes the first it has an engine for)."""


_DESCRIPTION_MAX = 1024
"""bioimage.io's limit on ``description`` (spec 0.5: ``MaxLen(1024)``)."""


def _description(text: str, operating_range: str) -> str:
    """The rdf description: the model's text, then its operating range where it fits the limit (the
    README always carries the range)."""
    text = " ".join(text.split())
    if not operating_range:
        return text
    full = f"{text} Operating range: {' '.join(operating_range.split())}"
    return full if len(full) <= _DESCRIPTION_MAX else text


def consumer_support(layout: D.TensorLayout, libtorch_state: str) -> list[docs.ConsumerSupport]:
    """Which consumers run the bundle (what its tags and README claim)."""
    same_shape = (
        layout.in_axes == layout.out_axes and not layout.fixed_out and not layout.singleton_in
        and all(v == 1 for v in layout.up.values())
    )
    return [
        docs.ConsumerSupport("bioimageio.core", True, "every weight format passes `bioimageio test`"),
        docs.ConsumerSupport(
            "deepImageJ (Fiji)", libtorch_state == "passed",
            "TorchScript loads and reproduces the test output in libtorch 2.0.0 (deepImageJ 3's newest engine); "
            "rdf fields have the types deepImageJ's reader (JDLL 0.6.1) expects" if libtorch_state == "passed"
            else f"not verified: the libtorch 2.0.0 check did not run ({libtorch_state})",
        ),
        docs.ConsumerSupport(
            "ilastik", same_shape,
            "output has the input's spatial shape, as ilastik requires" if same_shape
            else "ilastik gives the output the input's spatial shape; this model changes it",
        ),
    ]




CONSUMER_FORMAT_VERSION = "0.5.10"
"""The rdf format version every consumer reads: spec 0.5.9.1 (ilastik's pinned stack), 0.5.12
(bioimageio.core 0.11) and 0.5.14 validate it; newer versions write ``documentation``/``covers`` as
``{source, sha256}`` mappings, which deepImageJ's reader (JDLL 0.6.1 casts them to strings) and
spec 0.5.9.1 reject."""


def consumer_rdf(rdf: Mapping[str, Any]) -> dict[str, Any]:
    """The rdf as every consumer reads it: ``documentation`` and ``covers`` as plain relative
    paths, :data:`CONSUMER_FORMAT_VERSION`, TorchScript first among the weights (deepImageJ takes
    the first format it has an engine for). Nothing else changes."""
    data = dict(rdf)

    def path_of(v: Any) -> Any:
        return v.get("source", v) if isinstance(v, Mapping) else v

    if "documentation" in data:
        data["documentation"] = path_of(data["documentation"])
    if "covers" in data:
        data["covers"] = [path_of(c) for c in data["covers"] or []]
    data["format_version"] = CONSUMER_FORMAT_VERSION
    w = data.get("weights", {})
    data["weights"] = {k: w[k] for k in WEIGHTS_ORDER if k in w} | {k: v for k, v in w.items() if k not in WEIGHTS_ORDER}
    return data


def consumer_rdf_in_zip(zip_path: Path) -> dict[str, Any]:
    """Rewrite the zip's rdf.yaml with :func:`consumer_rdf`; returns the rdf as written."""
    import yaml

    tmp = zip_path.with_suffix(".rewrite.zip")
    rdf: dict[str, Any] = {}
    with zipfile.ZipFile(zip_path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "rdf.yaml":
                text = yaml.safe_dump(consumer_rdf(yaml.safe_load(data.decode("utf-8"))), sort_keys=False,
                                      allow_unicode=True)
                rdf = yaml.safe_load(text)
                data = text.encode("utf-8")
            zout.writestr(item, data)
    os.replace(tmp, zip_path)
    return rdf




def model_descr(
    spec: TaskSpec,
    layout: D.TensorLayout,
    meta: docs.ExportMetadata,
    *,
    name: str,
    pkg: Path,
    pre: list[v0_5.PreprocessingDescr],
    weights_descr: v0_5.WeightsDescr,
    tol: Mapping[str, float],
    cover: Path | None,
    readme: Path,
    out_sample: Path | None,
    consumers: list[docs.ConsumerSupport],
    two_d: bool,
    net: nn.Module,
    nickname: str,
) -> v0_5.ModelDescr:
    from bioimageio.spec.model import v0_5

    inp = D.input_descr(
        layout, test_tensor=v0_5.FileDescr(source=pkg / "test_input.npy"),
        sample_tensor=v0_5.FileDescr(source=pkg / "sample_input.tif"), preprocessing=pre,
        description=f"raw {layout.user_in_axes} image (any intensity range; normalised inside)",
    )
    outp = D.output_descr(
        layout, test_tensor=v0_5.FileDescr(source=pkg / "test_output.npy"),
        sample_tensor=v0_5.FileDescr(source=out_sample) if out_sample else None, postprocessing=[],
        description=f"restored {layout.user_out_axes} image in normalised units",
    )
    authors = [v0_5.Author(**a) for a in (meta.authors or [{"name": "unifmir export"}])]
    cite = [v0_5.CiteEntry(**_cite_kwargs(c)) for c in citations(meta)]
    tag_list = tags(spec, layout, meta, consumers)
    config = v0_5.Config(
        bioimageio=v0_5.BioimageioConfig(
            reproducibility_tolerance=[v0_5.ReproducibilityTolerance(**tol)],
            # deepImageJ (JDLL 0.6.1, ModelDescriptorV05.findID) needs an id or a nickname; the Zoo
            # assigns its own on upload
            nickname=nickname,
        ),
        deepimagej={"allow_tiling": True, "pyramidal_model": False},
        unifmir=unifmir_config(spec, net, two_d),
    )
    kwargs: dict[str, Any] = dict(
        name=name,
        description=_description(meta.description or f"UniFMIR {spec.title}: {spec.description}", meta.operating_range),
        authors=authors,
        maintainers=[v0_5.Maintainer(**m) for m in meta.maintainers] if meta.maintainers else [],
        cite=cite,
        tags=tag_list,
        version=meta.version,
        timestamp=v0_5.Datetime(_timestamp(meta.timestamp)),
        documentation=v0_5.FileDescr(source=readme),
        covers=[v0_5.FileDescr(source=cover)] if cover else [],
        inputs=[inp],
        outputs=[outp],
        weights=weights_descr,
        config=config,
    )
    if meta.license:
        kwargs["license"] = meta.license
    if meta.git_repo:
        kwargs["git_repo"] = meta.git_repo
    return v0_5.ModelDescr(**kwargs)


def unifmir_config(spec: TaskSpec, net: nn.Module, two_d: bool) -> dict[str, Any]:
    """``config.unifmir`` of the rdf: what unifmir needs to read the bundle back as a network
    (``unifmir predict/finetune --model BUNDLE``)."""
    import json

    import unifmir

    config = network_config(net)
    return {
        "task": spec.name,
        "two_d": bool(two_d),
        "model_config": json.loads(config.model_dump_json()),
        "state_dict_prefix": "inner.net.",
        "unifmir_version": str(unifmir.__version__),
    }


def nickname(out: Path) -> str:
    """A local model id from the bundle's file name (``unifmir-sr.zip`` -> ``unifmir-sr``)."""
    import re

    stem = out.name[: -len(".zip")] if out.name.lower().endswith(".zip") else out.name
    return re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "unifmir-model"


def _timestamp(text: str) -> dt.datetime:
    if text:
        return dt.datetime.fromisoformat(text)
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def citations(meta: docs.ExportMetadata) -> list[dict[str, str]]:
    """The UniFMIR paper, then the metadata's citations; duplicates (same DOI or URL) dropped."""
    paper = {"text": "Ma, C., Tan, W., He, R. & Yan, B. Pretraining a foundation model for generalizable "
             "fluorescence microscopy-based image restoration. Nature Methods 21, 1558-1567 (2024).",
             "doi": docs.UNIFMIR_DOI}
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for c in [paper, *meta.cite]:
        key = (c.get("doi") or c.get("url") or c["text"]).lower()
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _cite_kwargs(c: Mapping[str, str]) -> dict[str, Any]:
    from bioimageio.spec.model import v0_5

    kw: dict[str, Any] = {"text": c["text"]}
    if c.get("doi"):
        kw["doi"] = v0_5.Doi(c["doi"])
    else:
        kw["url"] = c["url"]
    return kw


def tags(spec: TaskSpec, layout: D.TensorLayout, meta: docs.ExportMetadata,
          consumers: list[docs.ConsumerSupport]) -> list[str]:
    """True tags only: the task, the dimensionality, the consumers that run it, then the metadata's."""
    tags = ["unifmir", "fluorescence-light-microscopy", "image-restoration", "pytorch", "swinir", spec.name,
            spec.bioimage_tag,
            "3d" if ("z" in layout.in_axes and not layout.singleton_in) or "z" in layout.out_axes else "2d"]
    claims = {"deepImageJ (Fiji)": gates.DEEPIMAGEJ_TAG, "ilastik": gates.ILASTIK_TAG}
    tags += [claims[c.name] for c in consumers if c.supported and c.name in claims]
    consumer_tags = set(claims.values())
    tags += [t for t in meta.tags if t not in tags and t not in consumer_tags]  # claims come from the checks only
    return tags
