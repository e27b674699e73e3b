"""`unifmir.export.docs`: export metadata (authors with affiliation/ORCID, names within 64
characters, plain YAML only, the official weights' unknown licence) and README commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from unifmir.export import docs


def test_author_strings_carry_affiliation_orcid_and_github_user() -> None:
    meta = docs.ExportMetadata.from_mapping({
        "authors": ["Jane Doe; affiliation=EMBL Heidelberg; orcid=0000-0002-1825-0097", "John Roe"],
        "maintainers": ["github_user=jroe; name=John Roe"],
    })
    assert meta.authors == [{"name": "Jane Doe", "affiliation": "EMBL Heidelberg", "orcid": "0000-0002-1825-0097"},
                            {"name": "John Roe"}]
    assert meta.maintainers == [{"github_user": "jroe", "name": "John Roe"}]
    with pytest.raises(ValueError, match="unknown field 'orchid'"):
        docs.ExportMetadata.from_mapping({"authors": ["Jane; orchid=1"]})
    with pytest.raises(ValueError, match="github_user"):
        docs.ExportMetadata.from_mapping({"maintainers": ["Jane Doe"]})


def test_names_longer_than_64_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 64"):
        docs.ExportMetadata(name="x" * 65)
    with pytest.raises(ValueError, match="license_note"):
        docs.ExportMetadata(license=None)


def test_metadata_yaml_with_a_python_tag_is_refused_with_the_file_named(tmp_path: Path) -> None:
    f = tmp_path / "meta.yaml"
    f.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ValueError, match=r"meta\.yaml is not plain YAML"):
        docs.load_metadata(f)


def test_official_weights_state_an_unknown_licence() -> None:
    from unifmir.zoo.importer import official_metadata
    from unifmir.zoo.official import OfficialModel

    model = OfficialModel(run="SwinIRCCPs", filename="model_best.pt", task="sr", variant="swinir_x2_in1",
                          dataset="BioSR", structure="CCPs", cite=("unifmir",))
    md = docs.ExportMetadata.from_mapping(official_metadata(model))
    assert md.license is None and "no licence" in md.license_note


def test_readme_commands_are_found_in_bash_blocks_only() -> None:
    text = "intro `unifmir x`\n```bash\nbioimageio predict rdf.yaml\n# comment\n\nunifmir predict a\n```\n```python\nx\n```\n"
    assert docs.readme_commands(text) == ["bioimageio predict rdf.yaml", "unifmir predict a"]
