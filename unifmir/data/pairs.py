"""The on-disk layout of a paired dataset (synthetic or your own) and the ``synth`` writer.

Dataset layout
--------------
A dataset is a folder::

    DATASET/
      dataset.yaml            # what the images are (see below)
      train/
        input/   0001.tif  cellA.tif  ...   # low-quality images
        target/  0001.tif  cellA.tif  ...   # high-quality images, same file names
      test/
        input/   ...
        target/  ...
      val/                    # optional validation split, same structure

* Images are TIFF (``.tif``/``.tiff``, OME-TIFF preferred) or ``.npy``, one image per file, single
  channel, in the task's user-facing axes: ``sr`` YX -> YX (target ``2x`` larger); ``denoise``
  ZYX -> ZYX (same shape); ``isotropic`` ZYX -> ZYX (input either already at the target's z
  sampling or z-subsampled by ``z_factor``: ``ceil(Z_target / z_factor)`` slices); ``projection``
  ZYX with exactly 50 slices -> YX; ``volumetric`` YX light-field image (sides multiples of 11,
  lenslet ``(i, j)`` covering pixels ``[11i:11i+11, 11j:11j+11]``) -> ZYX with 61 slices and the
  same Y/X size.
* An input and its target share the file name without suffix (``a.tif`` pairs with ``a.ome.tif``
  or ``a.npy``). Hidden files (starting with ``.``) are ignored. ``test/`` may be missing or empty.
* ``dataset.yaml`` needs only ``task``; everything else is optional and checked when present::

      task: denoise                 # sr | denoise | isotropic | projection | volumetric
      input_axes: ZYX               # must equal the task's (see unifmir.tasks)
      target_axes: ZYX
      pixel_size:                   # micrometres per pixel
        input: {Z: 1.0, Y: 0.2, X: 0.2}
        target: {Z: 1.0, Y: 0.2, X: 0.2}
      z_factor: 4                   # isotropic only: axial subsampling of the inputs
      description: my confocal stacks
      provenance: {...}             # free-form (unifmir synth records generator, seed, parameters)
      stream: {seed: 0, image_size: 96, epoch_size: 512}
                                    # optional: no train/ files, training pairs are drawn on the fly
                                    # from the task's randomised domain (unifmir.data.stream)

``unifmir synth --task TASK --n N --out DATASET --seed S`` writes exactly this layout with
synthetic pairs (:func:`synthesize_dataset`); :func:`load_dataset_info` and :func:`list_pairs`
read it back, and :class:`unifmir.data.datasets.PatchDataset` samples training patches from it.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from unifmir._atomic import atomic_path, clean_stale, fsync_dir, is_temp_name
from unifmir.data.io import IMAGE_SUFFIXES, ImageError, strip_suffix, write_image
from unifmir.tasks import TaskSpec, get_task, other_task

__all__ = [
    "DatasetInfo",
    "DATASET_YAML",
    "SPLITS",
    "load_dataset_info",
    "list_pairs",
    "synthesize_dataset",
    "write_dataset_info",
    "SYNTH_MARKER",
]

DATASET_YAML = "dataset.yaml"
SPLITS = ("train", "test")
FORMAT = "unifmir-dataset"
FORMAT_VERSION = 1


@dataclass
class DatasetInfo:
    """Validated contents of ``dataset.yaml`` (plus pair counts found on disk)."""

    root: Path
    task: str
    input_axes: str
    target_axes: str
    input_pixel_size: dict[str, float] = field(default_factory=dict)
    target_pixel_size: dict[str, float] = field(default_factory=dict)
    z_factor: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    stream: dict[str, int] | None = None
    """``seed``/``image_size``/``epoch_size`` of a stream dataset (training pairs drawn on the fly
    by :class:`unifmir.data.stream.StreamDataset`; ``train/`` holds no files); ``None``: files."""

    @property
    def spec(self) -> TaskSpec:
        return get_task(self.task)


def _is_image(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(IMAGE_SUFFIXES)


def list_pairs(root: str | os.PathLike, split: str = "train") -> list[tuple[Path, Path]]:
    """Sorted ``(input, target)`` file pairs of ``root/split``; raises a clear error when a folder
    is missing or a file has no counterpart."""
    root = Path(root)
    if not split or split != Path(split).name or split.startswith("."):
        raise ValueError(f"split must be a folder name such as {', '.join(SPLITS)} or 'val', got {split!r}")
    d_in, d_tg = root / split / "input", root / split / "target"
    for d in (d_in, d_tg):
        if not d.is_dir():
            raise FileNotFoundError(
                f"{d} does not exist; a dataset needs {split}/input and {split}/target folders "
                f"(see unifmir.data.pairs for the layout)"
            )

    def index(d: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for p in sorted(d.iterdir()):
            if not _is_image(p):
                continue
            key = strip_suffix(p)
            if key in out:
                raise ImageError(f"{d} holds two files named {key!r} ({out[key].name}, {p.name}); keep one")
            out[key] = p
        return out

    ins, tgs = index(d_in), index(d_tg)
    only_in = sorted(set(ins) - set(tgs))
    only_tg = sorted(set(tgs) - set(ins))
    if only_in or only_tg:
        msg = [f"unmatched files in {root / split}:"]
        if only_in:
            msg.append(f"inputs without target: {', '.join(str(ins[k]) for k in only_in[:10])};")
        if only_tg:
            msg.append(f"targets without input: {', '.join(str(tgs[k]) for k in only_tg[:10])};")
        msg.append("every input/NAME needs a target/NAME with the same name (any image suffix): add the "
                   "missing file or remove the unpaired one")
        raise ImageError(" ".join(msg))
    return [(ins[k], tgs[k]) for k in sorted(ins)]


def _count(root: Path, split: str) -> int:
    try:
        return len(list_pairs(root, split))
    except FileNotFoundError:
        return 0


def _pixel_dict(value: Any, where: str) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping like {{Y: 0.1, X: 0.1}}, got {value!r}")
    out = {}
    for k, v in value.items():
        k = str(k).upper()
        if k not in ("X", "Y", "Z"):
            raise ValueError(f"{where}: axis {k!r} must be one of X, Y, Z")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{where}.{k} must be a number, got {v!r}") from None
        if not f > 0:
            raise ValueError(f"{where}.{k} must be positive, got {v!r}")
        out[k] = f
    return out


def load_dataset_info(root: str | os.PathLike, task: str | None = None) -> DatasetInfo:
    """Read and validate ``root/dataset.yaml`` (``yaml.safe_load``).

    Without a ``dataset.yaml``, ``task`` must be given and the registry's axes are assumed. When
    both exist they must agree. Raises ``FileNotFoundError``/``ValueError`` with a fix.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    path = root / DATASET_YAML
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ValueError(f"{path} is not valid YAML ({' '.join(str(err).split())}); fix the file (tags such "
                             "as !!python/... are never read)") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must contain a mapping (key: value lines), not {type(loaded).__name__}")
        data = loaded
    elif task is None:
        raise FileNotFoundError(
            f"{path} not found; write one containing at least 'task: <name>' "
            f"(sr, denoise, isotropic, projection, volumetric) or pass the task explicitly"
        )
    name = data.get("task", task)
    if name is None:
        raise ValueError(f"{path} has no 'task' key; add e.g. 'task: denoise'")
    spec = get_task(str(name))
    if task is not None and other_task(spec, get_task(task)):
        raise ValueError(f"{root} holds a {spec.name!r} dataset (dataset.yaml) but task {task!r} was requested")
    in_axes = str(data.get("input_axes", spec.input_axes)).upper()
    tg_axes = str(data.get("target_axes", spec.output_axes)).upper()
    if in_axes != spec.input_axes or tg_axes != spec.output_axes:
        raise ValueError(
            f"{path}: axes {in_axes!r} -> {tg_axes!r} do not match task {spec.name!r} "
            f"({spec.input_axes!r} -> {spec.output_axes!r}); store images in the task's axes"
        )
    ps = data.get("pixel_size") or {}
    if not isinstance(ps, dict):
        raise ValueError(f"{path}: pixel_size must be a mapping with 'input' and 'target' entries")
    z_factor = data.get("z_factor")
    if z_factor is not None:
        if not isinstance(z_factor, int) or isinstance(z_factor, bool) or z_factor < 1:
            raise ValueError(f"{path}: z_factor must be a positive integer, got {z_factor!r}")
    prov = data.get("provenance") or {}
    if not isinstance(prov, dict):
        raise ValueError(f"{path}: provenance must be a mapping")
    stream = _stream_entry(data.get("stream"), path)
    counts = {s: _count(root, s) for s in SPLITS}
    if (root / "val").is_dir():
        counts["val"] = _count(root, "val")
    return DatasetInfo(
        root=root,
        task=spec.name,
        input_axes=in_axes,
        target_axes=tg_axes,
        input_pixel_size=_pixel_dict(ps.get("input"), "pixel_size.input"),
        target_pixel_size=_pixel_dict(ps.get("target"), "pixel_size.target"),
        z_factor=z_factor,
        counts=counts,
        description=str(data.get("description", "")),
        provenance=prov,
        stream=stream,
    )


_STREAM_KEYS = ("seed", "image_size", "epoch_size")


def _stream_entry(value: Any, path: Path) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(_STREAM_KEYS):
        raise ValueError(f"{path}: stream must be a mapping with keys among {', '.join(_STREAM_KEYS)}, got {value!r}")
    out = {}
    for k, v in value.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < (0 if k == "seed" else 1):
            raise ValueError(f"{path}: stream.{k} must be a {'non-negative' if k == 'seed' else 'positive'} integer, got {v!r}")
        out[k] = int(v)
    return out


def write_dataset_info(
    root: str | os.PathLike,
    task: str,
    *,
    input_pixel_size: dict[str, float] | None = None,
    target_pixel_size: dict[str, float] | None = None,
    z_factor: int | None = None,
    description: str = "",
    provenance: dict[str, Any] | None = None,
    counts: dict[str, int] | None = None,
    stream: dict[str, int] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``root/dataset.yaml`` (atomically) for a dataset in the layout above."""
    spec = get_task(task)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": spec.name,
        "input_axes": spec.input_axes,
        "target_axes": spec.output_axes,
        "pixel_size": {"input": dict(input_pixel_size or {}), "target": dict(target_pixel_size or {})},
    }
    if z_factor is not None:
        doc["z_factor"] = int(z_factor)
    if counts:
        doc["counts"] = dict(counts)
    if description:
        doc["description"] = description
    if provenance:
        doc["provenance"] = provenance
    if stream is not None:
        doc["stream"] = dict(stream)
    path = Path(root) / DATASET_YAML
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _yaml_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _yaml_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_yaml_safe(x) for x in v]
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


SYNTH_MARKER = ".unifmir-synth"
"""Marker file that ``unifmir synth`` writes into the dataset folders it creates; ``--overwrite``
replaces only folders that hold it."""
_SYNTH_ENTRIES = (*SPLITS, DATASET_YAML)
"""What a synthetic dataset consists of (and what ``--overwrite`` replaces)."""


def _claim_folder(out: Path, overwrite: bool) -> None:
    """Check that ``out`` may receive a synthetic dataset; mark it as ``synth``'s own."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder; choose another --out")
    marker = out / SYNTH_MARKER
    if out.is_dir():
        entries = [p for p in out.iterdir() if not is_temp_name(p.name) and p.name != SYNTH_MARKER]
        if entries and not marker.is_file():
            shown = ", ".join(sorted(p.name for p in entries)[:5])
            raise FileExistsError(
                f"{out} is not empty ({shown}) and was not written by `unifmir synth` (no {SYNTH_MARKER} file); "
                "--overwrite only replaces a dataset that synth made, never your own files: choose another --out"
            )
        if entries and not overwrite:
            raise FileExistsError(
                f"{out} exists and is not empty (a dataset from an earlier `unifmir synth`); choose another --out "
                "or pass --overwrite to replace its train/, test/ and dataset.yaml"
            )
    out.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        with atomic_path(marker) as tmp:
            tmp.write_text("written by `unifmir synth`: `synth --overwrite` may replace train/, test/ and "
                           "dataset.yaml in this folder\n", encoding="utf-8")


def _swap_in(stage: Path, out: Path) -> None:
    """Move the staged dataset entries into ``out``, replacing the previous ones."""
    trash = Path(tempfile.mkdtemp(prefix=f".unifmir-synth-old.{os.getpid()}.", suffix=".tmp", dir=out))
    try:
        for name in _SYNTH_ENTRIES:
            old, new = out / name, stage / name
            if old.exists() or old.is_symlink():
                os.replace(old, trash / name)
            if new.exists():
                os.replace(new, old)
        fsync_dir(out)
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def synthesize_dataset(
    task: str,
    n: int,
    out: str | os.PathLike,
    seed: int = 0,
    structure: str | None = None,
    test_fraction: float = 0.1,
    size: int | None = None,
    overwrite: bool = False,
    params: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    randomized: bool = False,
    epoch_size: int | None = None,
) -> Path:
    """Write ``n`` synthetic pairs for ``task`` into ``out`` in the dataset layout; return ``out``.

    Pair ``i`` is drawn with ``numpy.random.default_rng([seed, i])`` (reproducible, independent of
    ``n``); the last ``round(n * test_fraction)`` pairs (at least one when ``n >= 2`` and the
    fraction is positive) go to ``test/``. ``params`` are forwarded to the task's forward model
    (:func:`unifmir.data.forward.synthesize`). ``dataset.yaml`` (task, axes, pixel sizes,
    provenance: generator, version, seed, structure, size, parameters) is written with the pairs.

    ``out`` must be missing, empty, or a folder that ``synthesize_dataset`` made (it holds the
    :data:`SYNTH_MARKER` file); any other non-empty folder is refused even with ``overwrite``, so
    a user's own dataset is never deleted. With ``overwrite`` an earlier synthetic dataset's
    ``train/``, ``test/`` and ``dataset.yaml`` are replaced (other files are kept). The pairs are
    written into a staging folder inside ``out`` and moved into place at the end: an interrupted
    run leaves the previous dataset as it was, and its staging folder is removed by the next run.

    ``randomized`` writes a *stream* dataset instead: the ``n`` pairs (all in ``test/``, the
    held-out set) are drawn from the task's randomised domain (:mod:`unifmir.data.domain`, which
    ignores ``structure`` and ``params``), ``train/`` stays empty and ``dataset.yaml`` records the
    stream (seed ``seed + 1``, so training never renders a test pair; ``epoch_size`` items per epoch)
    that :class:`unifmir.data.stream.StreamDataset` draws training pairs from.
    """
    from unifmir import __version__
    from unifmir.data.forward import synthesize

    spec = get_task(task)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    out = Path(out)
    if out.is_dir():
        clean_stale(out, force=True)  # staging folders of a killed run
    _claim_folder(out, overwrite)
    n = int(n)
    n_test = int(round(n * float(test_fraction)))
    if test_fraction > 0 and n >= 2:
        n_test = max(n_test, 1)
    n_test = min(n_test, n - 1)
    n_train = n - n_test
    if randomized:
        return _synthesize_stream(spec, n, out, int(seed), size, epoch_size, progress)
    params = dict(params or {})
    width = max(4, len(str(n - 1)))
    first = None
    stage = Path(tempfile.mkdtemp(prefix=f".unifmir-synth.{os.getpid()}.", suffix=".tmp", dir=out))
    try:
        for i in range(n):
            rng = np.random.default_rng([int(seed), i])
            pair = synthesize(spec.name, rng, size=size, structure=structure, **params)
            if first is None:
                first = pair
            split = "train" if i < n_train else "test"
            name = f"{i:0{width}d}.tif"
            write_image(stage / split / "input" / name, pair.input, pair.input_axes, pair.input_pixel_size)
            write_image(stage / split / "target" / name, pair.target, pair.target_axes, pair.target_pixel_size)
            if progress is not None:
                progress(i + 1, n)
        for s in SPLITS:
            for sub in ("input", "target"):
                (stage / s / sub).mkdir(parents=True, exist_ok=True)
        assert first is not None
        prov = {
            "generator": "unifmir.data.forward.synthesize",
            "unifmir_version": __version__,
            "seed": int(seed),
            "pair_seed": "numpy.random.default_rng([seed, index])",
            "n": n,
            "test_fraction": float(test_fraction),
            "structure": first.params.get("structure"),
            "size": first.params.get("size"),
            "params": _yaml_safe(first.params),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        write_dataset_info(
            stage,
            spec.name,
            input_pixel_size=first.input_pixel_size,
            target_pixel_size=first.target_pixel_size,
            z_factor=first.params.get("z_factor") if spec.z_factor is not None else None,
            description=f"synthetic {spec.title} pairs ({first.params.get('structure')})",
            provenance=prov,
            counts={"train": n_train, "test": n_test},
            overwrite=True,
        )
        _swap_in(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out


def _synthesize_stream(spec: TaskSpec, n: int, out: Path, seed: int, size: int | None,
                       epoch_size: int | None, progress: Callable[[int, int], None] | None) -> Path:
    """:func:`synthesize_dataset` with ``randomized=True``: ``n`` held-out domain pairs + a stream."""
    from unifmir import __version__
    from unifmir.data.domain import draw_pair, get_domain
    from unifmir.data.stream import DEFAULT_EPOCH_SIZE

    domain = get_domain(spec.name)
    size = int(size or 128)
    width = max(4, len(str(n - 1)))
    stage = Path(tempfile.mkdtemp(prefix=f".unifmir-synth.{os.getpid()}.", suffix=".tmp", dir=out))
    try:
        drawn = []
        for i in range(n):
            a, b, physics = draw_pair(spec.name, np.random.default_rng([seed, i]), size)
            name = f"{i:0{width}d}.tif"
            write_image(stage / "test" / "input" / name, a, spec.input_axes)
            write_image(stage / "test" / "target" / name, b, spec.output_axes)
            drawn.append(_yaml_safe(physics))
            if progress is not None:
                progress(i + 1, n)
        for sp in SPLITS:
            for sub in ("input", "target"):
                (stage / sp / sub).mkdir(parents=True, exist_ok=True)
        prov = {
            "generator": "unifmir.data.domain.draw_pair",
            "unifmir_version": __version__,
            "seed": seed,
            "pair_seed": "numpy.random.default_rng([seed, index])",
            "n": n,
            "size": size,
            "operating_range": domain.describe(),
            "test_physics": drawn,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        write_dataset_info(
            stage, spec.name, description=f"randomised synthetic {spec.title} pairs (held-out set; training drawn on the fly)",
            provenance=prov, counts={"train": 0, "test": n}, overwrite=True,
            stream={"seed": seed + 1, "image_size": size, "epoch_size": int(epoch_size or DEFAULT_EPOCH_SIZE)},
        )
        _swap_in(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out
