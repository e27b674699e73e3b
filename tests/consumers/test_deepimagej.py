"""deepImageJ 3.1 reads every committed bundle: the rdf survives every cast of its reader, JDLL 0.6.1.

The check is ``jdll/JdllCast.java``: SnakeYAML (what JDLL loads rdf.yaml with) plus JDLL 0.6.1's
casts, in JDLL's order, run by the JDK. ``unifmir.export.consumers.jdll_field_problems`` is the same
check in Python (the export gate); both must agree, on good and on broken rdfs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from .consumers_testlib import (
    JDLL_OK,
    JavaUnavailableError,
    bundle_id,
    committed_bundles,
    compile_jdll_check,
    consumer_ready,
    edited_copy,
    read_rdf,
    run_jdll_check,
    unpack,
)

from unifmir.export.consumers import jdll_field_problems

BUNDLES = committed_bundles()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path | str:
    """The compiled Java check, or why it could not be compiled."""
    try:
        return compile_jdll_check(tmp_path_factory.mktemp("jdll-classes"))
    except JavaUnavailableError as err:
        return str(err)


def _classes(compiled: Path | str) -> Path:
    if isinstance(compiled, str):  # a test that needs the Java check fails (never skips) without it
        pytest.fail(compiled, pytrace=False)
    return compiled


def test_bundles_are_committed() -> None:
    assert BUNDLES, "no committed bundle in zoo_models/ (zoo_models/*/rdf.yaml or zoo_models/*.zip)"


@pytest.mark.parametrize("bundle", BUNDLES, ids=bundle_id)
def test_committed_bundle_is_read_by_jdll(bundle: Path, compiled: Path | str, tmp_path: Path) -> None:
    rdf_path = unpack(bundle, tmp_path / "b") if bundle.suffix == ".zip" else bundle
    rc, line = run_jdll_check(_classes(compiled), rdf_path)
    assert rc == 0 and line == JDLL_OK, f"{bundle_id(bundle)}: {line}"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit setting ``path`` (dot-separated keys, integer list indices) to ``value``."""

    def edit(rdf: dict[str, Any]) -> None:
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        node: Any = rdf
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return edit


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(rdf: dict[str, Any]) -> None:
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        node: Any = rdf
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]

    return edit


def _no_model_id(rdf: dict[str, Any]) -> None:
    rdf.pop("id", None)
    rdf["config"]["bioimageio"].pop("nickname", None)


# edits JDLL 0.6.1 accepts (no cast, or a cast guarded by instanceof); None: the consumer-ready copy
ACCEPTED: dict[str, Callable[[dict[str, Any]], None] | None] = {
    "consumer-ready": None,
    "tags-one-string": _set("tags", "denoising"),  # castListStrings wraps a String
    "tags-numbers": _set("tags", [1, 2]),  # `(List<String>) list` is unchecked, tags are never cast
    "test-tensor-source-number": _set("inputs.0.test_tensor.source", 5),  # instanceof-guarded
    "id-instead-of-nickname": lambda rdf: (rdf["config"]["bioimageio"].pop("nickname", None),
                                           rdf.setdefault("id", "some-model")),
}

# each edit breaks one field the way an exporter could
EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "documentation-mapping": _set("documentation", {"source": "README.md", "sha256": "0" * 64}),
    "covers-mapping": _set("covers", [{"source": "cover.png", "sha256": "0" * 64}]),
    "no-model-id": _no_model_id,
    "name-missing": _delete("name"),
    "license-mapping": _set("license", {"id": "MIT"}),
    "author-name-number": _set("authors", [{"name": 42}]),
    "cite-doi-list": _set("cite", [{"text": "x", "doi": ["10.1/x"]}]),
    "git-repo-list": _set("git_repo", ["https://example.org/r"]),
    "timestamp-null": _set("timestamp", None),
    "input-description-list": _set("inputs.0.description", ["a"]),
    "axis-scale-string": _set("inputs.0.axes.2.scale", "1.0"),
    "axis-size-float": _set("inputs.0.axes.2.size", 64.0),
    "axis-type-missing": _delete("inputs.0.axes.2.type"),
    "channel-names-string": _set("inputs.0.axes.1.channel_names", "raw"),
    "preprocessing-mapping": _set("inputs.0.preprocessing", {"id": "scale_range"}),
    "halo-reference-unknown": lambda rdf: [
        ax["size"].update(tensor_id="nope")
        for ax in rdf["outputs"][0]["axes"]
        if ax.get("halo") and isinstance(ax.get("size"), dict)
    ],
    "weights-entry-list": _set("weights.torchscript", ["weights_torchscript.pt"]),
    "weights-dependencies-source-mapping": lambda rdf: rdf["weights"]["pytorch_state_dict"].update(
        dependencies={"source": {"path": "environment.yaml"}}
    ),
    "config-list": _set("config", ["deepimagej"]),
    "deepimagej-allow-tiling-string": lambda rdf: rdf["config"].setdefault("deepimagej", {}).update(
        allow_tiling="true"
    ),
    "deepimagej-prediction-list": lambda rdf: rdf["config"].setdefault("deepimagej", {}).update(prediction=[]),
    "attachment-source-number": _set("attachments", [{"source": 3}]),
}


@pytest.fixture(scope="module")
def base_bundle() -> Path:
    """A committed bundle folder (the first) as the base of the edited copies."""
    folders = [b for b in BUNDLES if b.suffix != ".zip"] or BUNDLES
    assert folders, "no committed bundle to copy"
    return folders[0]


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_java_and_python_checks_accept(case: str, base_bundle: Path, compiled: Path | str, tmp_path: Path) -> None:
    """What JDLL reads without error passes both checks (they are not stricter than JDLL)."""
    rdf_path = edited_copy(base_bundle, tmp_path / "b", ACCEPTED[case])
    rc, line = run_jdll_check(_classes(compiled), rdf_path)
    problems = jdll_field_problems(yaml.safe_load(rdf_path.read_text()))
    assert (rc, line) == (0, JDLL_OK) and problems == [], (line, problems)


@pytest.mark.parametrize("case", sorted(EDITS))
def test_java_and_python_checks_agree(case: str, base_bundle: Path, compiled: Path | str, tmp_path: Path) -> None:
    """The Java program (JDLL's casts on SnakeYAML's Map) and jdll_field_problems (the export gate)
    report the same first failure."""
    rdf_path = edited_copy(base_bundle, tmp_path / "b", EDITS[case])
    rc, line = run_jdll_check(_classes(compiled), rdf_path)
    problems = jdll_field_problems(yaml.safe_load(rdf_path.read_text()))
    assert rc == 1, f"{case}: JDLL reads the broken rdf: {line}"
    assert problems, f"{case}: the Python check passes what JDLL rejects: {line}"
    assert problems[0] == line, f"{case}: Java says {line!r}, Python {problems[0]!r}"


@pytest.mark.parametrize("field", ["documentation", "covers"])
def test_mapping_valued_field_fails_naming_deepimagej_and_field(
    field: str, base_bundle: Path, compiled: Path | str, tmp_path: Path
) -> None:
    """The old exporter's `{source, sha256}` form is exactly what JDLL cannot cast."""
    good = edited_copy(base_bundle, tmp_path / "good")
    assert run_jdll_check(_classes(compiled), good) == (0, JDLL_OK)
    edit = EDITS["documentation-mapping" if field == "documentation" else "covers-mapping"]
    rc, line = run_jdll_check(_classes(compiled), edited_copy(base_bundle, tmp_path / "bad", edit))
    assert rc == 1
    assert line.startswith("deepImageJ/JDLL 0.6.1: field ") and field in line and "a mapping" in line, line


def test_consumer_ready_is_a_no_op_on_a_ready_rdf(base_bundle: Path) -> None:
    ready = consumer_ready(read_rdf(base_bundle))
    assert consumer_ready(ready) == ready
