"""Gates an exported bundle must pass before anything is written to its destination.

* ``test_model[<format>]``: bioimageio.core's ``test_model`` passes for every weight format.
* ``tiled_vs_whole``: bioimageio.core's blockwise prediction agrees with whole-image prediction
  (the block-artifact check) within :data:`TILED_TOLERANCE` (fraction of the output's range).
* ``deepimagej``: one input; axes map onto ImageJ's x, y, c, z, t; only processing steps deepImageJ
  implements; nearest-rank and interpolated percentiles of the test input agree; JDLL's size rule
  (:func:`jdll_output_shape`) gives bioimageio.core's output sizes for several valid input sizes.
* ``ilastik``: a bundle tagged ``ilastik`` has one input and one output of the input's spatial
  shape (ilastik's rule; :mod:`unifmir.export.consumers`).
* ``jdll-fields``: every rdf field has the type deepImageJ's reader (JDLL 0.6.1) casts it to.
* ``input-sensitivity``: shuffled and constant inputs change the output (not a collapsed network).

A failing gate raises :class:`GateError` listing every gate's result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # bioimageio is imported where it is used (import time)
    from bioimageio.core import PredictionPipeline
    from bioimageio.spec.model.v0_5 import AnyAxis, ModelDescr

ExportedFormat = Literal["torchscript", "pytorch_state_dict", "onnx"]
"""The weight formats an export writes (bioimage.io ``WeightsFormat`` names bioimageio.core runs)."""

__all__ = [
    "GateResult",
    "GateError",
    "TILED_TOLERANCE",
    "DEEPIMAGEJ_PROCESSING",
    "gate_test_model",
    "gate_tiled_vs_whole",
    "tiling_plan",
    "TilingPlan",
    "tiling_plans",
    "gate_tiled_vs_whole_per_axis",
    "gate_deepimagej",
    "gate_ilastik",
    "gate_consumer_fields",
    "gate_input_sensitivity",
    "ILASTIK_TAG",
    "DEEPIMAGEJ_TAG",
    "SENSITIVITY_MIN",
    "jdll_output_shape",
    "raise_on_failure",
]

ILASTIK_TAG = "ilastik"
DEEPIMAGEJ_TAG = "deepimagej"
"""Tags by which a bundle claims a consumer (bioimage.io convention)."""

SENSITIVITY_MIN = 0.01
"""Input-sensitivity gate: a shuffled or constant input must move the output by >= 1 % of its range
(10x the declared 1e-3 reproducibility tolerance; the collapsed volumetric network moved < 1e-3)."""

TILED_TOLERANCE = 0.02
"""Default block-artifact tolerance: max |tiled - whole| <= 2 % of the whole-image output's range
(the halo equals the measured receptive field for the SwinIR tasks, so the remaining differences
come from image-border padding; see :func:`gate_tiled_vs_whole`)."""

DEEPIMAGEJ_PROCESSING = frozenset(
    {
        "binarize", "clip", "ensure_dtype", "fixed_zero_mean_unit_variance", "scale_linear",
        "scale_range", "sigmoid", "zero_mean_unit_variance",
    }
)
"""Pre/postprocessing steps deepImageJ (JDLL) implements."""

_IMAGEJ_AXES = frozenset("bcxyzt")


@dataclass(frozen=True)
class GateResult:
    name: str
    ok: bool
    detail: str
    skipped: bool = False
    """The check did not run (e.g. libtorch 2.0.0 not available); ``ok`` is then True."""

    def line(self) -> str:
        tag = "SKIP" if self.skipped else ("PASS" if self.ok else "FAIL")
        return f"[{tag}] {self.name}: {self.detail}"


class GateError(RuntimeError):
    """An export gate failed; nothing was written to the destination."""

    def __init__(self, results: Sequence[GateResult]) -> None:
        self.results = list(results)
        failed = [r for r in results if not r.ok]
        super().__init__(
            "export aborted, no bundle written; failing gate(s):\n"
            + "\n".join(r.line() for r in failed)
        )


def raise_on_failure(results: Sequence[GateResult]) -> None:
    if any(not r.ok for r in results):
        raise GateError(results)


# --------------------------------------------------------------------------------------------
# bioimageio.core test_model


def gate_test_model(source: Path | ModelDescr, weight_formats: Iterable[ExportedFormat]) -> list[GateResult]:
    """Run ``bioimageio.core.test_model`` once per weight format."""
    from bioimageio.core import test_model

    results = []
    for wf in weight_formats:
        summary = test_model(source, weight_format=wf, devices=["cpu"], determinism="full")
        ok = summary.status == "passed"
        detail = "passed"
        if not ok:
            errs = []
            for d in summary.details:
                errs += [f"{d.name}: {e.msg}" for e in d.errors]
                if d.status == "failed" and not d.errors:
                    errs.append(f"{d.name} failed")
            detail = "; ".join(errs)[:2000] or summary.status
        results.append(GateResult(f"test_model[{wf}]", ok, detail))
    return results


# --------------------------------------------------------------------------------------------
# tiled vs whole image


def _predict_array(
    descr: ModelDescr, pp: PredictionPipeline, array: np.ndarray, ns: Mapping[str, int] | None
) -> np.ndarray:
    from bioimageio.core import Tensor
    from bioimageio.core.digest_spec import create_sample_for_model

    inp = descr.inputs[0]
    dims = tuple(str(a.id) for a in inp.axes)
    sample = create_sample_for_model(descr, inputs={inp.id: Tensor(array, dims=dims)}, sample_id="gate")
    # Normalise the unpadded image first, for both paths. bioimageio.core 0.11's whole-image path
    # pads the sample by the halo *before* its samplewise preprocessing, so its percentiles
    # include the padding, while its blockwise path (and deepImageJ) normalise the image itself;
    # with a large halo (isotropic z) that alone shifted every output pixel by ~0.1 %, which is
    # not a block artifact. Both paths then see the same normalised image.
    pp.apply_preprocessing(sample)
    if ns is None:
        out = pp.predict_sample_without_blocking(sample, skip_preprocessing=True)
    else:
        out = pp.predict_sample_with_blocking(
            sample, skip_preprocessing=True,
            ns={(inp.id, a.id): int(ns[str(a.id)]) for a in inp.axes if str(a.id) in ns})
    t = out.members[descr.outputs[0].id]
    return np.asarray(t.data)


def tiling_plan(descr: ModelDescr, halo_in: Mapping[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """Block parameters and a matching image size for the block-artifact gate.

    Per parameterised input axis (halo ``h``, step ``st``): blocks of at least ``4h + 2st`` and an
    image one step longer, so bioimageio.core (inner size = block - 2h, starts at multiples of
    it, the last one moved back to end at the image border) cuts each axis into exactly two
    blocks, and the second one starts *before* the first one ends: every kind of block edge
    occurs (image border padded by the halo, a seam with real halo on both sides, a shifted last
    block) at the smallest cost. Steps keep block starts on the network's grid (window, lenslets,
    isotropic z). Returns ``(ns per axis id, image size per axis id)``; bioimageio.core turns
    ``ns=0`` into 10, so every ``ns`` is >= 1.
    """
    from bioimageio.spec.model.v0_5 import ParameterizedSize

    ns: dict[str, int] = {}
    image: dict[str, int] = {}
    for a in descr.inputs[0].axes:
        size = a.size
        if not isinstance(size, ParameterizedSize):
            continue
        aid, mn, st = str(a.id), int(size.min), int(size.step)
        h = int(halo_in.get(aid, 0))
        n = max(1, math.ceil((4 * h + 2 * st - mn) / st))
        ns[aid] = n
        image[aid] = mn + n * st + st
    return ns, image


def gate_tiled_vs_whole(
    descr: ModelDescr,
    array: np.ndarray,
    *,
    ns: Mapping[str, int],
    tolerance: float = TILED_TOLERANCE,
    weight_format: ExportedFormat = "torchscript",
) -> GateResult:
    """Compare blockwise (blocks ``min + ns*step`` per axis) and whole-image prediction.

    Passes when ``max |tiled - whole| <= tolerance * range(whole)``. The block shape must be
    smaller than the image along at least one axis (else the gate would compare a thing with
    itself, and it says so). See :func:`tiling_plan` for ``ns``.
    """
    from bioimageio.spec.model.v0_5 import ParameterizedSize

    inp = descr.inputs[0]
    sizes = dict(zip((str(a.id) for a in inp.axes), array.shape))
    smaller = []
    for a in inp.axes:
        size = a.size
        if isinstance(size, ParameterizedSize) and str(a.id) in ns:
            block = size.min + ns[str(a.id)] * size.step
            if block < sizes[str(a.id)]:
                smaller.append(f"{a.id}: block {block} < image {sizes[str(a.id)]}")
    if not smaller:
        return GateResult("tiled_vs_whole", False, f"image {sizes} is not larger than one block; use a larger test image")
    from bioimageio.core import create_prediction_pipeline

    pp = create_prediction_pipeline(descr, devices=["cpu"], weight_format=weight_format)
    whole = _predict_array(descr, pp, array, None)
    tiled = _predict_array(descr, pp, array, ns)
    if whole.shape != tiled.shape:
        return GateResult("tiled_vs_whole", False, f"shapes differ: whole {whole.shape}, tiled {tiled.shape}")
    rng = float(np.nanmax(whole) - np.nanmin(whole)) or 1.0
    diff = float(np.nanmax(np.abs(whole - tiled)))
    mean = float(np.nanmean(np.abs(whole - tiled)))
    ok = bool(np.isfinite(diff)) and diff <= tolerance * rng
    return GateResult(
        "tiled_vs_whole",
        ok,
        f"max |tiled - whole| = {diff:.3g} ({diff / rng:.2%} of range {rng:.3g}; limit {tolerance:.1%}), "
        f"mean {mean:.3g}; blocks: {', '.join(smaller)}",
    )


@dataclass(frozen=True)
class TilingPlan:
    """One run of the per-axis block-artifact gate (:func:`tiling_plans`)."""

    axis: str
    """The input axis id cut into two blocks; every other axis is one block (its halo set to 0)."""
    block: dict[str, int]
    """Input block size per parameterised axis id (a valid size; the image size off ``axis``)."""
    image: dict[str, int]
    """Image size per parameterised axis id."""
    halo: int
    """Input halo along ``axis``."""


def tiling_plans(descr: ModelDescr, halo_in: Mapping[str, int]) -> list[TilingPlan]:
    """One block-artifact run per parameterised input axis, each as small as the check allows.

    bioimageio.core cuts every axis that has a halo into at least two blocks (inner size = block -
    2h < block <= image), so a single run that cuts all axes costs ``2**d`` blocks of about the
    whole image each (3-D isotropic, full-size network: 8 blocks of 2 x 144**3 pixels, ~48 of the
    ~55 network megapixels of the old gate). Instead each axis ``a`` (halo ``h``, step ``st``) gets
    its own run on an image that is long only along ``a``:

    * along ``a``: block ``B`` = the smallest valid size >= ``4h + st`` and image ``N = B`` (``h >
      0``; ``B + st`` when ``h = 0``), so bioimageio.core makes exactly two blocks (inner ``B - 2h``,
      the second moved back by one step to end at the border): every edge kind occurs along ``a``
      (image border padded by the halo, a seam with real halo on both sides, a shifted last block);
    * along every other axis: the axis' minimum valid size, one block, and halo 0 in the run's
      description, so whole-image and blockwise prediction treat it identically.

    For a local network (box-shaped receptive field) a halo that suffices along each axis alone
    suffices for blocks cut along several at once. Steps keep block starts on the network's grid
    (window, lenslets, isotropic z).
    """
    from bioimageio.spec.model.v0_5 import ParameterizedSize

    axes = [(str(a.id), a.size) for a in descr.inputs[0].axes if isinstance(a.size, ParameterizedSize)]
    mins = {aid: int(size.min) for aid, size in axes}
    plans: list[TilingPlan] = []
    for aid, size in axes:
        mn, st = int(size.min), int(size.step)
        h = int(halo_in.get(aid, 0))
        n = max(0, math.ceil((4 * h + st - mn) / st)) if st else 0
        block = mn + n * st
        image = block if h > 0 else block + st
        plans.append(TilingPlan(axis=aid, block=dict(mins, **{aid: block}), image=dict(mins, **{aid: image}), halo=h))
    return plans


def _descr_with_halo_only_on(descr: ModelDescr, axis: str) -> ModelDescr:
    """``descr`` with every output halo except the one on ``axis`` set to 0 (for one gate run)."""
    outputs = []
    for t in descr.outputs:
        axes = [
            ax.model_copy(update={"halo": 0}) if _halo(ax) and str(ax.id) != axis else ax
            for ax in t.axes
        ]
        outputs.append(t.model_copy(update={"axes": axes}))
    return descr.model_copy(update={"outputs": outputs})


def gate_tiled_vs_whole_per_axis(
    descr: ModelDescr,
    runs: Sequence[tuple[TilingPlan, np.ndarray]],
    *,
    tolerance: float = TILED_TOLERANCE,
    weight_format: ExportedFormat = "torchscript",
) -> GateResult:
    """Block-artifact gate, one run per axis (see :func:`tiling_plans`; images of ``plan.image``).

    Each run compares bioimageio.core's blockwise prediction (fixed blocks ``plan.block``) with its
    whole-image prediction of the same normalised image; passes when, in every run,
    ``max |tiled - whole| <= tolerance * range(whole)``.
    """
    from bioimageio.core import Tensor, create_prediction_pipeline
    from bioimageio.core.digest_spec import create_sample_for_model

    inp = descr.inputs[0]
    dims = tuple(str(a.id) for a in inp.axes)
    parts: list[str] = []
    ok = bool(runs)
    for plan, array in runs:
        sizes = dict(zip(dims, array.shape))
        inner = plan.block[plan.axis] - 2 * plan.halo
        if not inner < sizes[plan.axis] <= 2 * inner:
            return GateResult("tiled_vs_whole", False, f"{plan.axis}: image {sizes[plan.axis]} is not cut into two "
                                                       f"blocks of {plan.block[plan.axis]} (halo {plan.halo})")
        run_descr = _descr_with_halo_only_on(descr, plan.axis)
        pp = create_prediction_pipeline(run_descr, devices=["cpu"], weight_format=weight_format)
        sample = create_sample_for_model(run_descr, inputs={inp.id: Tensor(array, dims=dims)}, sample_id="gate")
        pp.apply_preprocessing(sample)  # normalise the unpadded image for both paths (see _predict_array)
        whole = np.asarray(pp.predict_sample_without_blocking(sample, skip_preprocessing=True)
                           .members[descr.outputs[0].id].data)
        tiled = np.asarray(pp.predict_sample_with_fixed_blocking(
            sample, input_block_shape={inp.id: {a.id: plan.block[str(a.id)] for a in inp.axes if str(a.id) in plan.block}},
            skip_preprocessing=True).members[descr.outputs[0].id].data)
        if whole.shape != tiled.shape:
            return GateResult("tiled_vs_whole", False, f"{plan.axis}: shapes differ: whole {whole.shape}, tiled {tiled.shape}")
        rng = float(np.nanmax(whole) - np.nanmin(whole)) or 1.0
        diff = float(np.nanmax(np.abs(whole - tiled)))
        ok &= bool(np.isfinite(diff)) and diff <= tolerance * rng
        shape = " x ".join(f"{k} {sizes[k]}" for k in dims if k in plan.image)
        parts.append(f"{plan.axis}: 2 blocks of {plan.block[plan.axis]} (halo {plan.halo}) on image {shape}, "
                     f"max |tiled - whole| = {diff:.3g} ({diff / rng:.2%} of range {rng:.3g})")
    return GateResult("tiled_vs_whole", ok, f"limit {tolerance:.1%}; " + "; ".join(parts))


# --------------------------------------------------------------------------------------------
# deepImageJ


def _axis_letter(a: AnyAxis) -> str:
    t = str(a.type)
    if t == "batch":
        return "b"
    if t == "channel":
        return "c"
    if t == "time":
        return "t"
    return str(a.id)


def jdll_output_shape(descr: ModelDescr, input_sizes: Mapping[str, int], tile: bool = True) -> dict[str, int]:
    """Output tile size as JDLL's ``TileMaker.getOutputTiles`` computes it (see describe.py).

    Raises ``ValueError`` with JDLL's message where JDLL would refuse the description.
    """
    from bioimageio.spec.model.v0_5 import SizeReference

    inp = descr.inputs[0]
    in_letters = [_axis_letter(a) for a in inp.axes]
    out: dict[str, int] = {}
    for ax in descr.outputs[0].axes:
        letter = _axis_letter(ax)
        if letter == "b":
            out[letter] = input_sizes.get("b", 1)
            continue
        if letter == "c":
            out[letter] = _channels(ax)
            continue
        size = ax.size
        scale = float(getattr(ax, "scale", 1.0))
        if isinstance(size, int):
            # fixed output axis: JDLL looks the same axis up in the input tile
            if letter not in in_letters:
                raise ValueError(f"Model specs too complex for JDLL (fixed output axis {letter!r} not in the input)")
            factor = input_sizes[letter] / input_sizes[letter]  # image / tile (whole image as one tile)
            if math.floor(size * factor) != size * factor:
                raise ValueError("Model specs too complex for JDLL (non-integer fixed-axis factor)")
            out[letter] = int(size * factor)
        elif isinstance(size, SizeReference):
            ref = str(size.axis_id)
            out[letter] = int(input_sizes[ref] * scale + 2 * float(size.offset))
        else:
            raise ValueError(f"Model specs too complex for JDLL (output axis {letter!r} has no reference)")
    return out


def _core_output_shape(descr: ModelDescr, input_sizes: Mapping[str, int]) -> dict[str, int]:
    from bioimageio.spec.model.v0_5 import AxisId

    inp = descr.inputs[0]
    sizes = {inp.id: {AxisId(_axis_id(a)): input_sizes[_axis_letter(a)] for a in inp.axes}}
    res = descr.get_output_tensor_sizes(sizes)[descr.outputs[0].id]
    return {_letter_of_id(descr, str(k)): _fixed(k, v) for k, v in res.items()}


def _fixed(axis: object, size: object) -> int:
    if not isinstance(size, int):
        raise ValueError(f"output axis {axis} has a data-dependent size ({size!r}); unifmir outputs have fixed sizes")
    return size


def _halo(a: AnyAxis) -> int:
    """The halo of an output axis (0 for axes without one)."""
    from bioimageio.spec.model.v0_5 import SpaceOutputAxisWithHalo, TimeOutputAxisWithHalo

    return int(a.halo) if isinstance(a, (SpaceOutputAxisWithHalo, TimeOutputAxisWithHalo)) else 0


def _channels(a: AnyAxis) -> int:
    """Number of channels of a channel axis (1 for any other axis)."""
    from bioimageio.spec.model.v0_5 import ChannelAxis

    return len(a.channel_names) if isinstance(a, ChannelAxis) else 1


def _axis_id(a: AnyAxis) -> str:
    return str(a.id)


def _letter_of_id(descr: ModelDescr, axis_id: str) -> str:
    for a in descr.outputs[0].axes:
        if str(a.id) == axis_id:
            return _axis_letter(a)
    return axis_id


def _valid_input_sizes(descr: ModelDescr, n: int) -> dict[str, int]:
    from bioimageio.spec.model.v0_5 import ParameterizedSize

    sizes: dict[str, int] = {}
    for a in descr.inputs[0].axes:
        letter = _axis_letter(a)
        if letter == "b":
            sizes[letter] = 1
        elif letter == "c":
            sizes[letter] = _channels(a)
        elif isinstance(a.size, int):
            sizes[letter] = a.size
        elif isinstance(a.size, ParameterizedSize):
            sizes[letter] = a.size.min + n * a.size.step
        else:
            raise ValueError(f"input axis {a.id} has no size of its own ({a.size!r})")
    return sizes


def gate_deepimagej(descr: ModelDescr, test_input: np.ndarray, percentiles: tuple[float, float] | None) -> GateResult:
    """deepImageJ/JDLL constraints (see module docstring)."""
    from bioimageio.spec.model.v0_5 import ClipDescr, ScaleRangeDescr

    from unifmir.export.tensors import check_percentile_agreement

    problems: list[str] = []
    notes: list[str] = []
    if len(descr.inputs) != 1:
        problems.append(f"{len(descr.inputs)} inputs (deepImageJ takes exactly one)")
    for t in list(descr.inputs) + list(descr.outputs):
        letters = [_axis_letter(a) for a in t.axes]
        bad = [x for x in letters if x not in _IMAGEJ_AXES]
        if bad or len(set(letters)) != len(letters):
            problems.append(f"tensor {t.id}: axes {letters} do not map onto ImageJ's x, y, c, z, t")
    for t, procs in [(t, t.preprocessing) for t in descr.inputs] + [(t, t.postprocessing) for t in descr.outputs]:
        for p in procs:
            if p.id not in DEEPIMAGEJ_PROCESSING:
                problems.append(f"tensor {t.id}: processing {p.id!r} is not implemented by deepImageJ")
            if isinstance(p, ScaleRangeDescr) and p.kwargs.reference_tensor is not None:
                problems.append(f"tensor {t.id}: scale_range with reference_tensor is not supported by deepImageJ")
            if isinstance(p, ClipDescr) and (p.kwargs.min is None or p.kwargs.max is None):
                problems.append(f"tensor {t.id}: deepImageJ's clip needs both min and max")
    if percentiles is not None:
        chk = check_percentile_agreement(test_input, percentiles)
        (notes if chk.ok else problems).append(chk.describe())
    for n in range(4):
        sizes = _valid_input_sizes(descr, n)
        try:
            jd = jdll_output_shape(descr, sizes)
        except ValueError as err:
            problems.append(str(err))
            break
        core = _core_output_shape(descr, sizes)
        if jd != core:
            problems.append(f"size rule: input {sizes}: JDLL gives {jd}, bioimageio.core {core}")
        else:
            for ax in descr.outputs[0].axes:
                halo = _halo(ax)
                letter = _axis_letter(ax)
                if halo and jd[letter] - 2 * halo <= 0:
                    problems.append(f"size rule: output {letter} tile {jd[letter]} <= 2*halo {2 * halo}")
    if not problems:
        notes.append("size rule: JDLL == bioimageio.core for 4 valid input sizes")
    ok = not problems
    return GateResult("deepimagej", ok, "; ".join(problems if problems else notes))


def gate_ilastik(rdf: Mapping[str, Any]) -> GateResult:
    """A bundle tagged ``ilastik`` must satisfy ilastik's rules (one input, one output, the output's
    spatial shape equal to the input's); an untagged bundle passes (it claims nothing)."""
    from unifmir.export.consumers import ilastik_shape_problems

    claims = ILASTIK_TAG in (rdf.get("tags") or [])
    problems = ilastik_shape_problems(rdf)
    if not claims:
        why = "; ".join(problems) if problems else "not tagged"
        return GateResult("ilastik", True, f"not claimed ({why})")
    if problems:
        return GateResult("ilastik", False, "tagged 'ilastik' but ilastik cannot run it: " + "; ".join(problems))
    return GateResult("ilastik", True, "one input, one output of the input's spatial shape (ilastik's rule)")


def gate_consumer_fields(rdf: Mapping[str, Any]) -> GateResult:
    """The rdf.yaml as written survives every type cast deepImageJ's reader (JDLL 0.6.1) applies."""
    from unifmir.export.consumers import jdll_field_problems

    problems = jdll_field_problems(rdf)
    if problems:
        return GateResult("jdll-fields", False, "; ".join(problems))
    return GateResult("jdll-fields", True, "every field has the type deepImageJ/JDLL 0.6.1 casts it to")


def gate_input_sensitivity(
    run: Callable[[np.ndarray], np.ndarray], test_input: np.ndarray, test_output: np.ndarray, seed: int = 0
) -> GateResult:
    """The output must depend on the input: a shuffled and a constant input (same intensity
    range) must each change the output by at least :data:`SENSITIVITY_MIN` of its range.

    A network that collapsed to the training mean returns the same volume for any input and
    passes every reproducibility check; this gate catches it. ``run`` maps a raw bioimage input
    array (``b, c, ...``) to the output array, through the bundle's own preprocessing.
    """
    rng = np.random.default_rng(seed)
    ref = np.asarray(test_output, dtype=np.float64)
    span = float(ref.max() - ref.min())
    if not np.isfinite(span) or span <= 0:
        return GateResult("input-sensitivity", False, f"the test output is constant or not finite (range {span:g})")
    x = np.asarray(test_input, dtype=np.float32)
    shuffled = rng.permutation(x.reshape(-1)).reshape(x.shape)
    constant = np.full_like(x, float(np.median(x)))
    parts, ok = [], True
    for label, probe in (("shuffled", shuffled), ("constant", constant)):
        y = np.asarray(run(probe), dtype=np.float64)
        change = float(np.abs(y - ref).max()) / span if y.shape == ref.shape else float("inf")
        ok &= change >= SENSITIVITY_MIN
        parts.append(f"{label} input changes the output by {change:.3g} of its range")
    detail = "; ".join(parts) + f" (minimum {SENSITIVITY_MIN:g})"
    return GateResult("input-sensitivity", ok, detail if ok else "output ignores its input: " + detail)

