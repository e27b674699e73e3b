"""The suite's recipes are valid, complete and consistent with the task registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from unifmir.data.forward import STRUCTURES
from unifmir.tasks import TASK_NAMES
from unifmir.zoo.citations import CITATIONS
from unifmir.zoo.recipe import RecipeError, load_recipe, load_recipes, load_suite

SUITE = {"unifmir-sr", "unifmir-denoise", "unifmir-isotropic", "unifmir-projection", "unifmir-volumetric",
         "unifmir-bacteria-denoise", "unifmir-bacteria-sr"}


def test_suite_has_one_recipe_per_task_plus_bacteria():
    recipes = load_recipes()
    assert set(recipes) == SUITE
    assert {r.task for r in recipes.values()} == set(TASK_NAMES)


@pytest.mark.parametrize("rid", sorted(SUITE))
def test_recipe_fields_are_usable(rid):
    r = load_recipes()[rid]
    assert r.data.structure is None or r.data.structure in STRUCTURES[r.task]
    assert all(c in CITATIONS for c in r.metadata.cite) and "unifmir" in r.metadata.cite
    assert r.metadata.training_data and "synthetic" in r.metadata.training_data.lower()
    assert all(a.github_user is None for a in r.metadata.authors)  # would force network access in validation


def test_bacteria_are_not_in_pretraining():
    suite = load_suite()
    assert not any((t.data.structure or "") in ("ecoli", "saureus", "bacteria") for t in suite.tasks)
    for t in suite.tasks:
        assert t.data.structure is None or t.data.structure in STRUCTURES[t.task]


def test_invalid_recipe_names_the_problem(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntask: deblur\nmetadata: {name: a, description: b}\n")
    with pytest.raises(RecipeError, match="unknown task 'deblur'"):
        load_recipe(bad)
    bad.write_text("id: x\ntask: sr\nmetadata: {name: a, description: b}\nfinetune: {stepz: 3}\n")
    with pytest.raises(RecipeError, match="stepz"):
        load_recipe(bad)
    bad.write_text("id: x\ntask: sr\nmetadata: {name: a, description: b}\nmodel: {unet_stem: 50}\n")
    with pytest.raises(RecipeError, match="unet_stem"):
        load_recipe(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")


@pytest.mark.parametrize("rid", sorted(SUITE))
def test_recipe_names_are_valid_bioimageio_names(rid):
    import re

    name = load_recipes()[rid].metadata.name
    assert re.fullmatch(r"[A-Za-z0-9_+\- ()]{5,128}", name), name


def test_model_overrides_reach_the_digest_only_when_given():
    """Recipes without ``model`` keep their digests (cached builds stay valid); volumetric is compact."""
    recipes = load_recipes()
    vol = recipes["unifmir-volumetric"]
    assert vol.model["unet_stem"] == 64 and "model" in vol.record()
    sr = recipes["unifmir-sr"]
    assert sr.model == {} and "model" not in sr.record() and "model" not in sr.record("task", "model")
