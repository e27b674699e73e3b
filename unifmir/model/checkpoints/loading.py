"""Loading any checkpoint into a network: the official layouts (:func:`load_official`) and every
accepted source at once (:func:`load_any`: ours, official, or a unifmir bioimage.io bundle).

An official state_dict is recognised (:mod:`.layouts`), its sizes inferred (:mod:`.hparams`) and
the network built and loaded strictly (:mod:`.strict`); a multi-task one asked for one task is
converted (:mod:`.convert`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from torch import Tensor, nn

from .convert import extract_task
from .errors import CheckpointError
from .hparams import check_fit, choose_task, config_from_fields, infer_hparams, normalised_fields
from .own import model_from_own
from .payload import Source, is_own, load_payload, unwrap
from .strict import build, finish, load_state_dict_strict

__all__ = ["load_any", "load_official"]

log = logging.getLogger("unifmir.model.checkpoints")


def _model_from_official(sd: "collections.OrderedDict[str, Tensor]", task: str | None) -> nn.Module:
    hp = infer_hparams(sd)
    variant = hp["_variant"]
    chosen = choose_task(variant, hp, task)
    if variant == "unimodel":
        config = config_from_fields(normalised_fields(hp, None))
        model = build(None, config)
        load_state_dict_strict(model, sd, context="(multi-task UniModel layout)")
        if chosen is not None:
            return extract_task(model, chosen)
        return model
    if task is not None and chosen is not None:
        check_fit(variant, hp, chosen)
    if variant == "swinir" and task is None and hp.get("upscale") == 1 and hp["in_chans"] == 1:
        log.info("swinir x1 in1 checkpoint loaded as task %r (pass task='denoise' for the 1-slice Planaria denoiser)", chosen)
    config = config_from_fields(normalised_fields(hp, chosen))
    model = build(chosen, config)
    load_state_dict_strict(model, sd, context=f"(released {variant} layout, task {chosen!r})")
    return model


@contextlib.contextmanager
def _naming(path: Path | None) -> Iterator[None]:
    """Prefix a :class:`CheckpointError` about the network with the file it came from."""
    try:
        yield
    except CheckpointError as exc:
        if path is None or str(path) in str(exc):
            raise
        raise CheckpointError(f"{path}: {exc}") from None


def load_official(
    source: str | os.PathLike | Mapping[str, Tensor],
    *,
    task: str | None = None,
    map_location: Any = "cpu",
) -> nn.Module:
    """Load an official UniFMIR checkpoint (any format, any size) into an eval-mode module.

    ``source`` is a path or an already loaded object: a bare state_dict, a wrapped one
    (``{'state_dict': ...}``, ``{'model': ...}``...), the fixtures' compact form, or a
    ``module.``-prefixed DataParallel state_dict. The layout (multi-task UniModel,
    ``swinir``, ``swinirProj_stage2``, ``swinir2dto3d``) is recognised from the keys and every size
    hyper-parameter is inferred from the shapes; loading is strict.

    Returns a single-task network (``.task`` = task name; call ``model(x)``) or, for a multi-task
    checkpoint, :class:`~unifmir.model.multitask.UniFMIR` (``.task is None``; call
    ``model(x, task="sr")``). ``task`` picks the task of an ambiguous single-task checkpoint
    (``x1 in1``: ``isotropic`` by default, ``denoise`` for the 1-slice Planaria denoiser) or, for a
    multi-task checkpoint, extracts that task's single-task network (:func:`extract_task`).
    A file in our own format is accepted too (see :func:`load_any`).

    Raises :class:`CheckpointError` for unreadable, foreign, code-carrying or mismatched files.
    """
    obj, path = load_payload(source, map_location)
    if is_own(obj):
        return finish(model_from_own(obj, path, task), map_location)
    sd = unwrap(obj, path, map_location)
    with _naming(path):
        return finish(_model_from_official(sd, task), map_location)


def load_any(source: Source, *, task: str | None = None, map_location: Any = "cpu") -> nn.Module:
    """Load our own checkpoint or any official one (what ``--model CKPT_OR_OFFICIAL`` accepts).

    ``task`` selects one task: for a multi-task checkpoint the single-task network is extracted
    (:func:`extract_task`); for a single-task checkpoint it must match (or, for official ``swinir``
    files, picks among sr / denoise / isotropic). A bioimage.io bundle written by ``unifmir
    export`` (``.zip``, its folder or its ``rdf.yaml``) gives its network
    (:func:`unifmir.model.bundles.load_bundle`).
    """
    if isinstance(source, (str, os.PathLike)):
        from unifmir.model import bundles

        if bundles.is_bundle_path(source):
            return finish(bundles.load_bundle(source, task=task, map_location=map_location), map_location)
    obj, path = load_payload(source, map_location)
    if is_own(obj):
        return finish(model_from_own(obj, path, task), map_location)
    with _naming(path):
        return finish(_model_from_official(unwrap(obj, path, map_location), task), map_location)
