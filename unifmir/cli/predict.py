"""``unifmir predict``: restore TIFF/OME-TIFF/npy images with a checkpoint, tiled, to OME-TIFF."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from unifmir.cli import CliError
from unifmir.cli._checks import (
    check_model_path,
    check_not_inputs,
    check_output_dir,
    device,
    nonneg_int,
    positive_float,
    positive_int,
)
from unifmir.cli._options import add_threads_option
from unifmir.tasks import TASK_NAMES

__all__ = ["register", "run", "output_path"]


def register(subparsers: Any) -> None:
    """Add the ``predict`` sub-command."""
    p = subparsers.add_parser(
        "predict",
        help="restore images with a UniFMIR checkpoint (tiled, any size)",
        description="Restore images with a UniFMIR checkpoint (ours or an official one). Images are "
        "normalised as in training, predicted tile by tile (exact: tiles carry a halo of the measured "
        "receptive field) and written as OME-TIFF with axes and pixel sizes to OUTPUT/<name>.ome.tif.",
    )
    p.add_argument("--model", required=True,
                   help="checkpoint file (unifmir or official UniFMIR), or a bioimage.io bundle written by "
                   "`unifmir export` (BUNDLE.zip, its folder or its rdf.yaml)")
    p.add_argument("--task", choices=TASK_NAMES, default=None, help="task (default: the checkpoint's)")
    p.add_argument("--input", nargs="+", required=True, metavar="IMAGE", help="input images (.tif/.ome.tif/.npy)")
    p.add_argument("--output", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--axes", default=None, help="axes of the inputs, e.g. ZYX (default: from the file)")
    p.add_argument("--tile", type=positive_int, default=None, help="tile side in pixels (default: from free memory)")
    p.add_argument(
        "--overlap", type=nonneg_int, default=None, help="halo per tile side in pixels (default: receptive field; exact)"
    )
    p.add_argument("--batch-size", type=positive_int, default=None, help="2-D images per network call")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:0 ...")
    p.add_argument("--backend", choices=("eager", "torchscript"), default="eager")
    p.add_argument(
        "--precision", choices=("fp32", "bf16", "fp16", "auto"), default="fp32",
        help="fp32 (default, unchanged results); bf16 autocast (CPUs with AMX or AVX-512-BF16, CUDA; "
        "eager backend); fp16 (CUDA); auto = bf16 where supported, else fp32 (the choice is printed)",
    )
    p.add_argument(
        "--dtype", choices=("float32", "input"), default="float32",
        help="output type: float32 (default) or the input's type (clipped and rounded)",
    )
    p.add_argument("--rescale", action="store_true", help="with --dtype input: stretch [min, max] to the type's range")
    p.add_argument("--z-factor", type=positive_int, default=None, help="isotropic: axial upsampling factor (default 4)")
    p.add_argument("--z-spacing", type=positive_float, default=None, help="z pixel size (um) to record in the output")
    p.add_argument("--no-normalize", action="store_true", help="feed the images unnormalised")
    p.add_argument(
        "--output-units", choices=("input", "normalized"), default="input",
        help="input (default): the output in the input's intensity range (de-normalised with the input's "
        "percentiles); normalized: the network's normalised units, exactly what the exported bioimage.io "
        "bundle (deepImageJ/Fiji, bioimageio predict) gives for the same image",
    )
    p.add_argument(
        "--padding", choices=("symmetric", "none"), default="symmetric",  # = predict.api.PADDINGS (no torch import here)
        help="symmetric (default): mirror the image by the bundle's halo before normalising and cut it off "
        "after, as bioimageio.core runs the exported bundle (same numbers up to the border); none: the "
        "network's own (zero-padded) borders",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads_option(p)
    p.set_defaults(func=run)


def output_path(out_dir: Path, src: Path) -> Path:
    """``OUTPUT/<input name without image suffix>.ome.tif``."""
    from unifmir.data.io import strip_suffix

    return out_dir / f"{strip_suffix(src)}.ome.tif"


def run(args: argparse.Namespace) -> int:
    """Execute ``unifmir predict``; user errors raise :class:`CliError`."""
    import numpy as np

    from unifmir.data.io import ImageError, check_finite_file, check_single_channel, read_image, write_image
    from unifmir.predict.api import cast_output, check_axes, check_input, output_pixel_size, predict, prepare_module
    from unifmir.tasks import get_task

    inputs = [Path(p) for p in args.input]
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"--output {out_dir} exists and is not a folder")
    outs = [output_path(out_dir, p) for p in inputs]
    check_model_path("--model", args.model)
    check_not_inputs(outs, [*inputs, Path(args.model)])  # even with --overwrite
    check_output_dir("--output", out_dir)
    dup = {o for o in outs if outs.count(o) > 1}
    if dup:
        raise CliError(f"several inputs would write the same output {sorted(map(str, dup))}; rename them")
    if not args.overwrite:
        existing = [str(o) for o in outs if o.exists()]
        if existing:
            raise CliError(f"output file(s) exist: {', '.join(existing)}; pass --overwrite to replace them")
    if args.dtype != "float32" and args.dtype != "input":  # pragma: no cover - argparse guards
        raise CliError(f"unknown --dtype {args.dtype}")
    if args.dtype == "input" and args.output_units == "normalized" and not args.rescale:
        raise CliError("--dtype input with --output-units normalized would round the normalised values "
                       "(about 0..1) to a few integers; add --rescale, or use --output-units input")
    from unifmir.predict.precision import resolve_precision

    try:
        prec, why = resolve_precision(args.precision, args.device)
    except ValueError as err:
        raise CliError(f"--precision {args.precision}: {err}") from None
    if prec != "fp32" and args.backend != "eager":
        raise CliError(f"--precision {args.precision} ({prec}) needs --backend eager; use --precision fp32 "
                       "with --backend torchscript")
    if args.precision == "auto" and not args.quiet:
        print(f"--precision auto: {why}", file=sys.stderr)
    try:
        tm = prepare_module(args.model, args.task, z_factor=args.z_factor)
    except (FileNotFoundError, ValueError, TypeError, RuntimeError) as err:
        raise CliError(f"cannot load model {args.model}: {err}") from None
    spec = get_task(tm.task)
    # validate every input before writing anything
    for src in inputs:
        try:
            arr, meta = read_image(src, axes=args.axes, mmap=True)
        except FileNotFoundError as err:
            raise CliError(str(err)) from None
        except (ImageError, ValueError, OSError) as err:
            raise CliError(str(err) if str(src) in str(err) else f"cannot read {src}: {err}") from None
        try:
            check_single_channel(src, tuple(arr.shape), meta.axes, letters="C")
            try:
                shape = check_axes(arr.shape, meta.axes, spec)
            except ValueError as err:
                raise CliError(f"{src}: {err}; pass --axes if the file's axes are wrong") from None
            check_input(shape, spec)
            check_finite_file(src, arr)
        except (ValueError, CliError) as err:
            raise CliError(f"{src}: {err}" if str(src) not in str(err) else str(err)) from None
        del arr
    files = inputs
    from unifmir._atomic import clean_stale

    clean_stale(out_dir, force=True)  # temporary files of a killed earlier run
    bar = None
    if not args.quiet and len(inputs) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(inputs), desc="files", unit="file")
    try:
        for src, dst in zip(files, outs):
            arr, meta = read_image(src, axes=args.axes)
            try:
                y = predict(
                    tm, arr, axes=meta.axes, tile=args.tile, overlap=args.overlap, device=args.device,
                    backend=args.backend, normalize=not args.no_normalize, batch_size=args.batch_size,
                    z_factor=args.z_factor, progress=not args.quiet, output_units=args.output_units,
                    precision=args.precision, padding=args.padding,
                )
            except ValueError as err:
                raise CliError(f"{src}: {err}") from None
            if not np.isfinite(y).all():
                raise CliError(f"the model {args.model} produced NaN/Inf values for {src} (its weights are finite); "
                               "check the image's intensities (--no-normalize?) or use another checkpoint")
            out = cast_output(y, None if args.dtype == "float32" else arr.dtype, rescale=args.rescale)
            ps = output_pixel_size(
                meta.pixel_size, spec, scale=tm.scale if spec.input_axes == spec.output_axes == "YX" else None,
                z_factor=getattr(tm, "factor", None), z_spacing=args.z_spacing,
            )
            try:
                write_image(dst, out, spec.output_axes, pixel_size=ps, overwrite=args.overwrite)
            except FileExistsError as err:
                raise CliError(str(err)) from None
            if args.quiet is False:
                print(f"{src} -> {dst} {out.shape} {out.dtype}", file=sys.stderr)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    _ = np  # numpy imported for cast_output's types
    return 0

