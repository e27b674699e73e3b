"""Read unifmir's own bioimage.io bundles back: bundle (zip, folder or ``rdf.yaml``) -> single-task network.

``unifmir export`` writes a bioimage.io model bundle whose ``pytorch_state_dict`` weights hold the
exported module (the network inside a whole-image task module inside the bioimage.io adapter, so
its keys read ``inner.net.*``). :func:`load_bundle` turns such a bundle back into the plain
single-task network that :func:`unifmir.build_model` makes (attributes ``.task`` and ``.config``),
which is what ``unifmir predict / finetune / export`` work with.

Where the task and the :class:`~unifmir.model.config.ModelConfig` come from, in this order:

1. the rdf's ``config.unifmir`` section: ``{task: ..., model_config: {ModelConfig fields}, two_d: bool,
   state_dict_prefix: "inner.net.", ...}``;
2. the ``pytorch_state_dict`` architecture ``kwargs`` of older bundles: ``{task, config, wrapper, ...}``;
3. architecture ``kwargs`` of the form ``{network, network_kwargs, task_module, task_module_kwargs, ...}``
   where ``network_kwargs`` are :func:`unifmir.model.factory.single_task_kwargs` ``(task, cfg)[1]``:
   mapped back to a ModelConfig and checked by mapping forward again (an error if they do not agree).

The weights file is checked against the rdf's sha256 (when given), read with
``torch.load(weights_only=True)``, stripped of the wrapper prefix and loaded strictly. Everything
else (foreign bundles, zips without ``rdf.yaml``, damaged files) raises :class:`BundleError`, a
:class:`~unifmir.model.checkpoints.CheckpointError`, naming the file and what was expected.

Only the standard library, PyYAML and torch are used: bioimageio.spec/core are not needed.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

import torch
import yaml
from torch import nn

from unifmir.model.checkpoints import CheckpointError, load_state_dict_strict
from unifmir.model.config import PRESETS, ModelConfig
from unifmir.model.factory import build_model, single_task_kwargs
from unifmir.tasks import TASKS, get_task, other_task

__all__ = [
    "RDF_NAMES",
    "BundleError",
    "BundleInfo",
    "is_bundle_path",
    "read_bundle_info",
    "load_bundle",
]

RDF_NAMES: tuple[str, ...] = ("rdf.yaml", "bioimageio.yaml")
"""File names of a bundle's description at the top level of its zip or folder."""

_EXPECTED = (
    "expected a bioimage.io model bundle written by `unifmir export`: a .zip or a folder with rdf.yaml "
    "at its top level, or that rdf.yaml itself"
)


class BundleError(CheckpointError):
    """A path that is not a readable unifmir bioimage.io bundle (the message says why and what is expected)."""


@dataclass(frozen=True)
class BundleInfo:
    """What a unifmir bundle says about its network (read by :func:`read_bundle_info`)."""

    path: Path
    """The bundle as given (zip, folder or rdf.yaml)."""
    task: str
    """Task name (a ``TASKS`` key)."""
    config: ModelConfig
    """The network's hyper-parameters."""
    two_d: bool
    """The bundle takes 2-D images (the 2D variant of the 1-slice denoiser)."""
    weights: str
    """Path of the ``pytorch_state_dict`` weights inside the bundle."""
    sha256: str | None
    """sha256 of the weights file declared by the rdf (None when absent)."""
    source: str
    """Where task and config were read from: ``config.unifmir``, ``kwargs(task, config)`` or
    ``kwargs(network_kwargs)``."""
    state_dict_prefix: str | None = None
    """Prefix of the network's keys in the weights file, when the rdf states it (else detected)."""
    rdf: Mapping[str, Any] = field(repr=False, default_factory=dict)
    """The whole parsed rdf."""


# --------------------------------------------------------------------------------------------
# the three containers: zip, folder, rdf.yaml


class _Container:
    """Read-only access to the files of a bundle (zip, folder or the folder of an rdf.yaml)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._root: Path | None = None
        self.rdf_name = ""
        if path.is_dir():
            self._root = path
            self.rdf_name = next((n for n in RDF_NAMES if (path / n).is_file()), "")
            if not self.rdf_name:
                raise BundleError(f"{path} is a folder without {' or '.join(RDF_NAMES)}; {_EXPECTED}")
        elif path.suffix.lower() in (".yaml", ".yml"):
            self._root = path.parent
            self.rdf_name = path.name
        else:
            try:
                self._zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise BundleError(f"{path} is not a valid zip file (truncated or damaged?); {_EXPECTED}") from None
            names = set(self._zip.namelist())
            self.rdf_name = next((n for n in RDF_NAMES if n in names), "")
            if not self.rdf_name:
                shown = ", ".join(sorted(names)[:6]) or "nothing"
                self._zip.close()
                raise BundleError(
                    f"{path} is a zip without {' or '.join(RDF_NAMES)} at its top level (it holds {shown}), "
                    f"so it is not a bioimage.io bundle; {_EXPECTED}"
                )

    def where(self, name: str) -> str:
        return f"{self.path}:{name}" if self._zip is not None else str((self._root or self.path) / name)

    def read(self, name: str) -> bytes:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise BundleError(f"{self.path}: the rdf names {name!r}, a file outside the bundle; {_EXPECTED}")
        try:
            if self._zip is not None:
                return self._zip.read(str(rel))
            assert self._root is not None
            return (self._root / rel).read_bytes()
        except (KeyError, FileNotFoundError):
            raise BundleError(
                f"{self.path}: the rdf names {name!r}, which is not in the bundle; the bundle is incomplete "
                "(copy the whole zip/folder, or export it again)"
            ) from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def is_bundle_path(path: str | os.PathLike) -> bool:
    """True if ``path`` should be read as a bundle rather than as a torch checkpoint.

    Folders, ``.yaml``/``.yml`` files and ``.zip`` files are bundles (a ``.zip`` that is not one
    then gives a clear :class:`BundleError`); so is any zip holding ``rdf.yaml`` at its top level.
    A torch checkpoint (``torch.save`` writes a zip archive too) is not, whatever its suffix.
    """
    p = Path(path).expanduser()
    if p.is_dir() or p.suffix.lower() in (".yaml", ".yml"):
        return p.exists()
    if not p.is_file() or not zipfile.is_zipfile(p):
        return p.suffix.lower() == ".zip" and p.exists()  # a damaged .zip: BundleError says so
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return p.suffix.lower() == ".zip"
    if any(n in RDF_NAMES for n in names):
        return True
    torch_archive = any(n.endswith("/data.pkl") for n in names)  # what torch.save writes
    return p.suffix.lower() == ".zip" and not torch_archive


# --------------------------------------------------------------------------------------------
# reading the rdf


def _rdf(container: _Container) -> dict[str, Any]:
    where = container.where(container.rdf_name)
    try:
        data = yaml.safe_load(container.read(container.rdf_name).decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise BundleError(f"{where} is not valid YAML ({err}); {_EXPECTED}") from None
    if not isinstance(data, dict):
        raise BundleError(f"{where} does not hold a mapping; {_EXPECTED}")
    if data.get("type") != "model":
        raise BundleError(f"{where} describes a {data.get('type')!r}, not a model; {_EXPECTED}")
    return data


def _config(data: Any, where: str) -> ModelConfig:
    if not isinstance(data, Mapping):
        raise BundleError(f"{where}: the model config is a {type(data).__name__}, not a mapping of ModelConfig fields")
    try:
        return ModelConfig.model_validate(dict(data))
    except ValueError as err:  # pydantic.ValidationError
        raise BundleError(
            f"{where}: its model config is not valid for this unifmir ({err}); was the bundle written by a "
            "newer unifmir? Upgrade unifmir"
        ) from None


def _task(name: Any, where: str) -> str:
    if name not in TASKS:
        raise BundleError(f"{where}: unknown task {name!r} (unifmir knows {', '.join(TASKS)})")
    return get_task(name).name


def _plain(value: Any) -> Any:
    """YAML lists as tuples, so that kwargs compare equal to ``single_task_kwargs``'."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


_RENAMED = {"variant": "projection_variant"}
"""network keyword -> ModelConfig field where the names differ."""


def _config_from_network_kwargs(task: str, nk: Mapping[str, Any], where: str) -> ModelConfig:
    """Invert ``single_task_kwargs(task, cfg)[1]``; checked by mapping forward again.

    Fields the task's network does not use (e.g. the ENLCN sizes of an SR network) are not in the
    keywords; they come from the preset (``full``/``small``) that agrees with most given fields.
    """
    spec = get_task(task)
    fields = {_RENAMED.get(k, k): _plain(v) for k, v in nk.items() if _RENAMED.get(k, k) in ModelConfig.model_fields}
    if fields.get("in_chans") == spec.net_in_channels:
        fields["in_chans"] = None
    if fields.get("upscale") == spec.scale:
        fields["upscale"] = None

    def agreement(preset: ModelConfig) -> int:
        return sum(_plain(getattr(preset, k)) == v for k, v in fields.items())

    base = max(PRESETS.values(), key=agreement)
    cfg = _config({**base.model_dump(), **fields}, where)
    _, forward = single_task_kwargs(task, cfg)
    want, got = _plain(forward), _plain(dict(nk))
    if want != got:
        diff = sorted(k for k in set(want) | set(got) if want.get(k, "<absent>") != got.get(k, "<absent>"))
        raise BundleError(
            f"{where}: the network keywords cannot be mapped back to a unifmir ModelConfig for task {task!r} "
            f"(they differ in {', '.join(diff)}); the bundle was written by another unifmir version. "
            "Re-export it with this version, or load it with that version"
        )
    return cfg


def _two_d(task: str, module_name: Any) -> bool:
    """The 2D variant of the denoiser is exported with the plain 2-D image module."""
    module_2d = get_task(task).task_module_2d
    return module_2d is not None and str(module_name or "").rpartition(".")[2] == module_2d


def _section(rdf: Mapping[str, Any]) -> Mapping[str, Any] | None:
    section = (rdf.get("config") or {}).get("unifmir") if isinstance(rdf.get("config"), Mapping) else None
    return section if isinstance(section, Mapping) and ("task" in section or "model_config" in section) else None


def _describe_network(rdf: Mapping[str, Any], where: str) -> tuple[str, ModelConfig, bool, str]:
    """(task, config, two_d, source) from ``config.unifmir`` or the architecture kwargs."""
    section = _section(rdf)
    if section is not None:
        task = _task(section.get("task"), f"{where} config.unifmir.task")
        cfg = _config(section.get("model_config"), f"{where} config.unifmir.model_config")
        return task, cfg, bool(section.get("two_d", False)), "config.unifmir"
    sd = (rdf.get("weights") or {}).get("pytorch_state_dict") or {}
    arch = sd.get("architecture") if isinstance(sd, Mapping) else None
    kwargs = arch.get("kwargs") if isinstance(arch, Mapping) else None
    if isinstance(kwargs, Mapping) and "task" in kwargs and "config" in kwargs:
        task = _task(kwargs["task"], f"{where} architecture kwargs")
        cfg = _config(kwargs["config"], f"{where} architecture kwargs.config")
        return task, cfg, _two_d(task, kwargs.get("wrapper")), "kwargs(task, config)"
    if isinstance(kwargs, Mapping) and isinstance(kwargs.get("network_kwargs"), Mapping):
        nk = kwargs["network_kwargs"]
        tk_v = kwargs.get("task_module_kwargs")
        tk: Mapping[str, Any] = tk_v if isinstance(tk_v, Mapping) else {}
        task = _task(nk.get("task", tk.get("task")), f"{where} architecture kwargs")
        cfg = _config_from_network_kwargs(task, nk, f"{where} architecture kwargs.network_kwargs")
        return task, cfg, _two_d(task, kwargs.get("task_module")), "kwargs(network_kwargs)"
    made_by = ""
    if isinstance(arch, Mapping):
        made_by = f" (its architecture is {arch.get('callable')!r} from {arch.get('source')!r})"
    raise BundleError(
        f"{where} is a bioimage.io model ({rdf.get('name', 'unnamed')!r}) that unifmir did not make{made_by}: "
        "it has no config.unifmir section and no unifmir architecture keywords. unifmir reads only the "
        "bundles `unifmir export` writes; for other tools' models use bioimageio.core"
    )


def _weights_entry(rdf: Mapping[str, Any], where: str) -> tuple[str, str | None]:
    entry = (rdf.get("weights") or {}).get("pytorch_state_dict")
    if not isinstance(entry, Mapping) or not entry.get("source"):
        formats = ", ".join(rdf.get("weights") or {}) or "none"
        raise BundleError(
            f"{where} has no pytorch_state_dict weights (weight formats: {formats}); unifmir reads a bundle's "
            "pytorch_state_dict weights. Export the model again with `unifmir export`"
        )
    source = str(entry["source"])
    if "://" in source:
        raise BundleError(
            f"{where}: the pytorch_state_dict weights are a URL ({source}); unifmir reads local bundles only. "
            "Download the bundle zip and pass that"
        )
    sha = entry.get("sha256")
    return source, (str(sha).lower() if sha else None)


def read_bundle_info(path: str | os.PathLike) -> BundleInfo:
    """Read the description of a unifmir bundle (zip, folder or rdf.yaml) without loading weights.

    Raises :class:`BundleError` for anything that is not a unifmir bundle, ``FileNotFoundError``
    when ``path`` does not exist.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"bundle {p} does not exist; check the path")
    c = _Container(p)
    try:
        return _info(c)
    finally:
        c.close()


def _info(c: _Container) -> BundleInfo:
    where = c.where(c.rdf_name)
    rdf = _rdf(c)
    task, cfg, two_d, source = _describe_network(rdf, where)
    weights, sha = _weights_entry(rdf, where)
    prefix = (_section(rdf) or {}).get("state_dict_prefix")
    return BundleInfo(path=c.path, task=task, config=cfg, two_d=two_d, weights=weights, sha256=sha,
                      source=source, state_dict_prefix=str(prefix) if prefix is not None else None, rdf=rdf)


# --------------------------------------------------------------------------------------------
# weights


def _wrapper_prefix(keys: list[str], net_keys: list[str]) -> str:
    """The prefix the export wrappers put before the network's keys (``inner.net.`` today)."""
    anchor = net_keys[0] if net_keys else ""
    for key in keys:
        if key == anchor or key.endswith("." + anchor):
            prefix = key[: len(key) - len(anchor)]
            if all(k.startswith(prefix) for k in keys):
                return prefix
    return "inner.net." if keys and all(k.startswith("inner.net.") for k in keys) else ""


def _state_dict(c: _Container, info: BundleInfo, map_location: Any) -> dict[str, torch.Tensor]:
    data = c.read(info.weights)
    where = c.where(info.weights)
    if info.sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != info.sha256:
            raise BundleError(
                f"{where}: sha256 {digest} does not match the {info.sha256} that {c.rdf_name} declares: the "
                "weights were modified or damaged after export. Fetch the bundle again or export it again"
            )
    try:
        sd = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a damaged/foreign file
        raise BundleError(
            f"{where} cannot be read as a plain tensor state_dict with weights_only=True "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        ) from None
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise BundleError(f"{where} does not hold a state_dict (a dict of tensors)")
    return dict(sd)


def load_bundle(path: str | os.PathLike, *, task: str | None = None, map_location: Any = "cpu") -> nn.Module:
    """Load the network of a unifmir bioimage.io bundle (zip, folder or its rdf.yaml), eval mode.

    Returns the single-task network of :func:`unifmir.build_model` (``.task``, ``.config``) with
    the bundle's ``pytorch_state_dict`` weights, loaded strictly after the wrapper prefix
    (``config.unifmir.state_dict_prefix``, else detected: ``inner.net.``) is removed. ``task``, if given, must be the bundle's task.

    Raises :class:`BundleError` (not a unifmir bundle, sha256 mismatch, weights that do not fit)
    or ``FileNotFoundError``.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"bundle {p} does not exist; check the path")
    c = _Container(p)
    try:
        info = _info(c)
        if task is not None and other_task(info.task, get_task(task)):
            raise BundleError(f"{p} holds a {info.task!r} network, not {get_task(task).name!r}; pass the matching "
                              "task or another bundle")
        sd = _state_dict(c, info, map_location)
    finally:
        c.close()
    model = build_model(info.task, info.config)
    prefix = info.state_dict_prefix
    if prefix is None:
        prefix = _wrapper_prefix(list(sd), list(model.state_dict()))
    stripped = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in sd.items()}
    try:
        load_state_dict_strict(model, stripped, context=f"(bundle {p}, weights {info.weights}, task {info.task!r})")
    except CheckpointError as err:
        raise BundleError(str(err)) from None
    return model.eval()
