"""What two consumers of a bundle require of its ``rdf.yaml``, checked on the parsed rdf (a dict).

Torch-free and numpy-free on purpose: the export gates and the tests run it on any rdf.

* :func:`jdll_field_problems`: deepImageJ 3.1 reads ``rdf.yaml`` through JDLL 0.6.1 (its pom.xml pins
  ``io.bioimage:dl-modelrunner`` 0.6.1). JDLL loads the file with SnakeYAML into a ``Map`` and casts
  the values without type checks, so a field of another type is a ``ClassCastException`` (a missing
  one a ``NullPointerException``) and the model is never listed. This function applies the same
  casts and dereferences, in JDLL's order, and returns one line per failure in the form
  ``deepImageJ/JDLL 0.6.1: field <path> is <actual type>, JDLL casts it to <expected>``; its first
  line is the failure JDLL meets first. The Java program ``tests/consumers/jdll/JdllCast.java`` is
  the same check run on SnakeYAML itself, and the tests require both to agree. Mirrored source
  (bioimage-io/JDLL, tag ``dl-modelrunner-0.6.1``, ``io.bioimage.modelrunner.bioimageio.description``):
  ``ModelDescriptor.buildModelDescription`` / ``buildAuthors`` / ``buildCiteElements``,
  ``ModelDescriptorV05`` (constructor, ``calculateTotalInputHalo``, ``buildAttachments``, ``findID``,
  ``addBioEngine``), ``TensorSpecV05``, ``AxesV05``, ``AxisV05``, ``AxisSize``,
  ``weights.ModelWeight.build`` and ``weights.ModelDependencies``, ``ExecutionConfig.getDeepImageJ``
  and ``deepimagej.DeepImageJExecutionConfig.build`` (read when tiling), and the covers as read by
  ``gui.ModelSelectionPanel`` / ``download.DownloadModel``. Not mirrored: the pre/postprocessing
  kwargs, which JDLL's ``transformations.*`` setters check with ``instanceof`` when a model runs.
* :func:`ilastik_shape_problems`: ilastik runs a model on blocks whose output has the *input's*
  shape: ``OpTikTorchClassifierPredict.setupOutputs`` sets the output shape to the image shape with
  only the channel count replaced, and ``execute`` grows the requested block by the model's halo
  *in input coordinates* and cuts the prediction with the same coordinates; it asserts one input
  and one output tensor and no halo on the channel axis (ilastik, ``lazyflow/operators/tiktorch/
  operators.py``, with ``lazyflow/operators/tiktorch/classifier.py``, ``get_halos`` and the result
  crop in ``predict``). So every output axis but batch and channel must be an input axis of the
  same size: same id, same scale as the input axis (size ratio 1), size referencing that input axis
  with offset 0 (or the same fixed size).
* :func:`claimed_consumers`: the consumers a bundle claims, by its ``tags``.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Mapping, Sequence, TypeGuard

__all__ = [
    "CONSUMER_TAGS",
    "JDLL_VERSION",
    "claimed_consumers",
    "ilastik_shape_problems",
    "jdll_field_problems",
]

JDLL_VERSION = "0.6.1"
CONSUMER_TAGS = ("deepimagej", "ilastik")
"""Tags by which a bundle claims it runs in a consumer (bioimage.io convention)."""

_PREFIX = f"deepImageJ/JDLL {JDLL_VERSION}: field "
_DEPENDENCIES_READERS = frozenset(
    # every weights reader of JDLL 0.6.1 but OnnxWeights handles "dependencies" (ModelDependencies)
    {"keras_hdf5", "pytorch_state_dict", "tensorflow_saved_model_bundle", "tensorflow_js", "torchscript",
     "pytorch_script"}
)


def claimed_consumers(rdf: Mapping[str, Any]) -> frozenset[str]:
    """The consumers (``"deepimagej"``, ``"ilastik"``) named in the rdf's ``tags``."""
    tags = rdf.get("tags")
    if not isinstance(tags, list):
        return frozenset()
    return frozenset(t for t in tags if isinstance(t, str) and t in CONSUMER_TAGS)


# ------------------------------------------------------------------------------------------ JDLL


def _java_type(v: Any) -> str:
    """How SnakeYAML represents a value PyYAML parsed as ``v``, worded as the Java check words it."""
    if v is None:
        return "missing (null)"
    if isinstance(v, Mapping):
        return "a mapping (java.util.LinkedHashMap)"
    if isinstance(v, list):
        return "a list (java.util.ArrayList)"
    if isinstance(v, str):
        return "a string (java.lang.String)"
    if isinstance(v, bool):
        return "a boolean (java.lang.Boolean)"
    if isinstance(v, int):
        if -(2**31) <= v < 2**31:
            return "an integer (java.lang.Integer)"
        if -(2**63) <= v < 2**63:
            return "an integer (java.lang.Long)"
        return "an integer (java.math.BigInteger)"
    if isinstance(v, float):
        return "a float (java.lang.Double)"
    if isinstance(v, (datetime.date, datetime.datetime)):
        return "a timestamp (java.util.Date)"
    return f"a {type(v).__name__}"


def _is_str(v: Any) -> TypeGuard[str]:
    return isinstance(v, str)


def _is_map(v: Any) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(v, Mapping)


def _is_list(v: Any) -> TypeGuard[list[Any]]:
    return isinstance(v, list)


def _is_number(v: Any) -> TypeGuard[int | float]:  # java.lang.Number: Integer, Long, BigInteger, Double (not Boolean)
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_java_int(v: Any) -> TypeGuard[int]:  # `(int) object` unboxes a java.lang.Integer only
    return isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31


def _is_bool(v: Any) -> TypeGuard[bool]:
    return isinstance(v, bool)


class _Casts:
    """Collects the failures of JDLL's casts, worded as ``JdllCast.java`` words them."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def cast(self, path: str, v: Any, ok: Callable[[Any], bool], target: str) -> bool:
        """A Java reference cast: ``null`` passes, another type fails."""
        if v is None or ok(v):
            return True
        self.problems.append(f"{_PREFIX}{path} is {_java_type(v)}, JDLL casts it to {target}")
        return False

    def deref(self, path: str, v: Any, target: str) -> bool:
        """A dereference (method call, unboxing): ``null`` fails."""
        if v is not None:
            return True
        self.problems.append(
            f"{_PREFIX}{path} is missing, JDLL dereferences it (NullPointerException; JDLL needs {target})"
        )
        return False

    def illegal(self, message: str) -> None:
        self.problems.append(_PREFIX + message)


def jdll_field_problems(rdf: Mapping[str, Any]) -> list[str]:
    """Every failure deepImageJ 3.1's reader (JDLL 0.6.1) meets on this rdf, first failure first.

    Empty: JDLL reads the rdf. See the module docstring for the mirrored source."""
    c = _Casts()
    if not _is_map(rdf):
        c.cast("(document)", rdf, _is_map, "Map<String, Object>")
        return c.problems
    fv = rdf.get("format_version")
    if not (isinstance(fv, str) and fv.startswith("0.5")):
        c.illegal(f"format_version is {_java_type(fv)}; this check mirrors JDLL's 0.5 reader (ModelDescriptorV05) only")
        return c.problems
    _read_v05(c, rdf)
    return c.problems


def _read_v05(c: _Casts, y: Mapping[str, Any]) -> None:
    model_id: Any = None
    name: Any = None
    # ModelDescriptor.buildModelDescription: fields in sorted key order
    for f in sorted(str(k) for k in y):
        v = y.get(f)
        if f in ("format_version", "description", "license", "documentation", "git_repo", "type"):
            c.cast(f, v, _is_str, "String")
        elif f == "name":
            if c.cast(f, v, _is_str, "String"):
                name = v
        elif f == "id":
            if c.cast(f, v, _is_str, "String"):
                model_id = v
        elif f == "timestamp":
            c.deref(f, v, "an object (toString())")
        elif f in ("authors", "maintainers", "packaged_by"):
            _authors(c, f, v)
        # tags, links, covers: castListStrings' `(List<String>) list` is unchecked
    _cite(c, y.get("cite"))
    inputs = _tensors(c, "inputs", y.get("inputs"))
    outputs = _tensors(c, "outputs", y.get("outputs"))
    weights = y.get("weights")
    if c.cast("weights", weights, _is_map, "Map<String, Object>") and c.deref(
        "weights", weights, "Map<String, Object>"
    ) and _is_map(weights):
        _weights(c, weights)
    config = y.get("config")
    config_ok = c.cast("config", config, _is_map, "Map<String, Object>")
    _attachments(c, y.get("attachments"))
    _total_input_halo(c, inputs, outputs)
    c.deref("name", name, "String")  # addBioEngine: `getName().equals("cellpose-python")`
    if model_id is None and config_ok:  # ModelDescriptorV05: findID(), then `modelID.length()`
        c.deref("id (or config.bioimageio.nickname)", _find_id(c, y, config), "String")
    if config_ok and _is_map(config):  # ExecutionConfig.getDeepImageJ (TileCalculator, TileMaker)
        dij = config.get("deepimagej")
        if c.cast("config.deepimagej", dij, _is_map, "Map<String, Object>") and dij is not None:
            _deepimagej(c, dij)
    covers = y.get("covers")  # gui.ModelSelectionPanel, download.DownloadModel read them as Strings
    if _is_list(covers):
        for i, cover in enumerate(covers):
            c.cast(f"covers[{i}]", cover, _is_str, "String")


def _authors(c: _Casts, f: str, v: Any) -> None:
    # buildAuthors: non-list -> empty, non-map entries skipped, Author.build(String...) arguments
    if not _is_list(v):
        return
    for i, elem in enumerate(v):
        if not _is_map(elem):
            continue
        for k in ("affiliation", "email", "github_user", "name", "orcid"):
            c.cast(f"{f}[{i}].{k}", elem.get(k), _is_str, "String")


def _cite(c: _Casts, v: Any) -> None:
    # buildCiteElements: Cite.build((String) text, (String) doi, (String) url)
    if not _is_list(v):
        return
    for i, elem in enumerate(v):
        if not _is_map(elem):
            continue
        for k in ("text", "doi", "url"):
            c.cast(f"cite[{i}].{k}", elem.get(k), _is_str, "String")


def _tensors(c: _Casts, f: str, v: Any) -> list[Mapping[str, Any]] | None:
    # buildInputTensors / buildOutputTensors: non-list -> null, non-map entries skipped
    if not _is_list(v):
        return None
    tensors = []
    for i, elem in enumerate(v):
        if not _is_map(elem):
            continue
        _tensor_spec(c, f"{f}[{i}]", elem)
        tensors.append(elem)
    return tensors


def _tensor_spec(c: _Casts, p: str, t: Mapping[str, Any]) -> None:
    # TensorSpecV05(Map, boolean)
    if t.get("id") is None:
        c.cast(f"{p}.name", t.get("name"), _is_str, "String")
    else:
        c.cast(f"{p}.id", t.get("id"), _is_str, "String")
    axes = t.get("axes")
    if not _is_list(axes):
        c.illegal(f"{p}.axes is {_java_type(axes)}, JDLL requires a list of axes (IllegalArgumentException)")
        return
    for i, ax in enumerate(axes):
        if not _is_map(ax):
            c.illegal(f"{p}.axes[{i}] is {_java_type(ax)}, JDLL requires a mapping (IllegalArgumentException)")
            return
        if not _axis(c, f"{p}.axes[{i}]", ax):
            return
    c.cast(f"{p}.description", t.get("description"), _is_str, "String")
    for kind in ("preprocessing", "postprocessing"):
        procs = t.get(kind)
        if not c.cast(f"{p}.{kind}", procs, _is_list, "List") or procs is None:
            continue
        for i, elem in enumerate(procs):
            where = f"{p}.{kind}[{i}]"
            if c.cast(where, elem, _is_map, "Map<String, Object>"):
                c.deref(where, elem, "Map<String, Object>")
    # sample_tensor / test_tensor / data: guarded by instanceof in JDLL


def _axis(c: _Casts, p: str, m: Mapping[str, Any]) -> bool:
    """AxisV05(Map) + AxisSize(Object); False where JDLL throws an IllegalArgumentException."""
    ax_id = m.get("id") if c.cast(f"{p}.id", m.get("id"), _is_str, "String") else "?"
    ax_type = m.get("type") if c.cast(f"{p}.type", m.get("type"), _is_str, "String") else "?"
    names = m.get("channel_names")
    names_ok = c.cast(f"{p}.channel_names", names, _is_list, "List<String>")
    if m.get("description") is not None:
        c.cast(f"{p}.description", m.get("description"), _is_str, "String")
    if m.get("concatenable") is not None:
        c.cast(f"{p}.concatenable", m.get("concatenable"), _is_bool, "boolean")
    if m.get("scale") is not None:
        c.cast(f"{p}.scale", m.get("scale"), _is_number, "Number")
    if m.get("halo") is not None:
        c.cast(f"{p}.halo", m.get("halo"), _is_number, "Number")
    size = m.get("size")
    if _is_number(size):
        c.cast(f"{p}.size", size, _is_java_int, "int (Integer)")
    if ax_id is None and ax_type is None:
        c.illegal(f"{p} has neither id nor type (IllegalArgumentException)")
        return False
    if not c.deref(f"{p}.type", ax_type, "String"):
        return True
    if ax_id is None and ax_type == "space":
        c.illegal(f"{p}.id is missing on a space axis (IllegalArgumentException)")
        return False
    if ax_type == "batch":
        return True
    if (ax_id == "channel" or ax_type == "channel") and names_ok:
        c.deref(f"{p}.channel_names", names, "List<String>")  # `this.size.min = channelNames.size()`
    return True


def _abbreviation(ax: Mapping[str, Any]) -> str:
    # AxisV05's abbreviation: "b" for batch, "c" for channel, else the id
    if ax.get("type") == "batch":
        return "b"
    if ax.get("id") == "channel" or ax.get("type") == "channel":
        return "c"
    return str(ax.get("id"))


def _total_input_halo(
    c: _Casts, inputs: Sequence[Mapping[str, Any]] | None, outputs: Sequence[Mapping[str, Any]] | None
) -> None:
    # ModelDescriptorV05.calculateTotalInputHalo: output halos moved onto the referenced input axis;
    # JDLL leaves the method at the first halo axis without a reference, and at the first whose input
    # axis is absent or already has a larger halo
    if not c.deref("outputs", outputs, "a list of tensors") or outputs is None:
        return
    input_halo: dict[str, int] = {}
    for o, out in enumerate(outputs):
        axes = out.get("axes")
        if not _is_list(axes):
            continue
        for a, ax in enumerate(axes):
            if not _is_map(ax):
                continue
            halo = ax.get("halo")
            halo = int(halo) if _is_number(halo) else 0
            if halo == 0:
                continue
            size = ax.get("size")
            sm = size if _is_map(size) else {}
            ref = sm.get("tensor_id") if _is_str(sm.get("tensor_id")) else None
            ref_axis = sm.get("axis_id") if _is_str(sm.get("axis_id")) else None
            if ref is None:
                c.deref("inputs", inputs, "a list of tensors")  # `this.input_tensors.stream()`
                return
            scale_v, offset_v = ax.get("scale"), sm.get("offset")
            scale = scale_v if _is_number(scale_v) else 1.0
            offset = offset_v if _is_number(offset_v) else 0.0
            n_halo = (halo + offset) / scale
            found = next(
                (t for t in inputs or () if (t.get("name") if t.get("id") is None else t.get("id")) == ref), None
            )
            if found is None:  # `findInputTensor(ref).getAxesInfo()`: NullPointerException
                c.illegal(f"outputs[{o}].axes[{a}].size.tensor_id names no input tensor ({ref}), JDLL "
                          "dereferences it (NullPointerException)")
                return
            key = f"{ref}/{ref_axis}"
            in_axis = next((x for x in found.get("axes") or () if _is_map(x) and _abbreviation(x) == ref_axis), None)
            if in_axis is None:
                return
            if key not in input_halo:
                h = in_axis.get("halo")
                input_halo[key] = int(h) if _is_number(h) else 0
            if input_halo[key] > n_halo:
                return
            input_halo[key] = int(n_halo)


def _weights(c: _Casts, w: Mapping[str, Any]) -> None:
    # ModelWeight.build: `(Map<String, Object>) yamlFieldElements.get(ww)` for every entry; the
    # readers guard every field with instanceof but ModelDependencies' `(String) map.get("source")`
    for ww, entry in w.items():
        if not c.cast(f"weights.{ww}", entry, _is_map, "Map<String, Object>") or entry is None:
            continue
        deps = entry.get("dependencies")
        if ww in _DEPENDENCIES_READERS and _is_map(deps):
            c.cast(f"weights.{ww}.dependencies.source", deps.get("source"), _is_str, "String")


def _attachments(c: _Casts, v: Any) -> None:
    # ModelDescriptorV05.buildAttachments: `(String) ((Map) ll).get("source")`
    if not _is_list(v):
        return
    for i, ll in enumerate(v):
        if _is_map(ll) and "source" in ll:
            c.cast(f"attachments[{i}].source", ll.get("source"), _is_str, "String")


def _find_id(c: _Casts, y: Mapping[str, Any], config: Any) -> Any:
    # ModelDescriptorV05.findID (config null: ExecutionConfig.build invents a "friend-N" nickname)
    if config is None:
        return "friend-0"
    bio = config.get("bioimageio")
    if _is_map(bio) and bio.get("nickname") is not None:
        nick = bio.get("nickname")
        return nick if c.cast("config.bioimageio.nickname", nick, _is_str, "String") else "?"
    ident = y.get("id")
    return ident if c.cast("id", ident, _is_str, "String") else "?"


def _deepimagej(c: _Casts, m: Mapping[str, Any]) -> None:
    # DeepImageJExecutionConfig.build
    for k in ("pyramidal_model", "allow_tiling"):
        if k in m and c.cast(f"config.deepimagej.{k}", m[k], _is_bool, "boolean"):
            c.deref(f"config.deepimagej.{k}", m[k], "boolean")
    if "test_information" in m:
        c.cast("config.deepimagej.test_information", m["test_information"], _is_map, "Map<String, Object>")
    c.cast("config.deepimagej.prediction", m.get("prediction"), _is_map, "Map<String, Object>")


# --------------------------------------------------------------------------------------- ilastik


def _tensor_id(t: Mapping[str, Any]) -> Any:
    return t.get("id", t.get("name"))


def ilastik_shape_problems(rdf: Mapping[str, Any]) -> list[str]:
    """Why ilastik cannot run this rdf's model (empty: its tensors fit ilastik's block rule).

    One input, one output, no channel halo, and every output axis other than batch/channel is an
    input axis of the same size (see the module docstring for ilastik's source)."""
    inputs_v, outputs_v = rdf.get("inputs"), rdf.get("outputs")
    inputs = inputs_v if isinstance(inputs_v, list) else []
    outputs = outputs_v if isinstance(outputs_v, list) else []
    problems = []
    if len(inputs) != 1:
        problems.append(f"ilastik: {len(inputs)} input tensors; ilastik runs models with exactly one")
    if len(outputs) != 1:
        problems.append(f"ilastik: {len(outputs)} output tensors; ilastik runs models with exactly one")
    if problems:
        return problems
    inp, out = inputs[0], outputs[0]
    in_axes = {str(a.get("id", a.get("type"))): a for a in inp.get("axes") or [] if _is_map(a)}
    out_axes = {str(a.get("id", a.get("type"))): a for a in out.get("axes") or [] if _is_map(a)}
    image_types = ("space", "time")
    in_image = [k for k, a in in_axes.items() if a.get("type") in image_types]
    out_image = [k for k, a in out_axes.items() if a.get("type") in image_types]
    for k in in_image:
        if k not in out_axes:
            problems.append(f"ilastik: input axis {k!r} is missing from the output; ilastik gives the output the "
                            "input's shape")
    for k, ax in out_axes.items():
        if ax.get("type") == "channel" and ax.get("halo"):
            problems.append(f"ilastik: output axis {k!r} (channel) has a halo; ilastik expects none on channels")
    for k in out_image:
        ax = out_axes[k]
        if k not in in_axes:
            problems.append(f"ilastik: output axis {k!r} is not an input axis; ilastik gives the output the "
                            "input's shape")
            continue
        in_ax = in_axes[k]
        in_scale, out_scale = in_ax.get("scale", 1.0), ax.get("scale", 1.0)
        if out_scale != in_scale:
            if _is_number(in_scale) and _is_number(out_scale) and out_scale:
                problems.append(f"ilastik: output axis {k!r} is {in_scale / out_scale:g}x the input's size (input "
                                f"scale {in_scale}, output scale {out_scale}); ilastik needs the input's size")
            else:
                problems.append(f"ilastik: output axis {k!r} has scale {out_scale!r}, input axis {k!r} "
                                f"{in_scale!r}; ilastik needs the output the input's size")
            continue
        size, in_size = ax.get("size"), in_ax.get("size")
        if _is_map(size) and "tensor_id" in size:
            if size.get("tensor_id") != _tensor_id(inp) or size.get("axis_id") != k:
                problems.append(f"ilastik: output axis {k!r} size refers to {size.get('tensor_id')}."
                                f"{size.get('axis_id')}, not to input axis {k!r}")
            elif size.get("offset", 0) != 0:
                problems.append(f"ilastik: output axis {k!r} size has offset {size.get('offset')}; ilastik "
                                "needs offset 0 (the input's size)")
        elif size != in_size:
            problems.append(f"ilastik: output axis {k!r} has size {size!r}, input axis {k!r} has {in_size!r}; "
                            "ilastik needs the output the input's size")
    return problems
