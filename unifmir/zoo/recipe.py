"""Suite recipes: validated descriptions of how each zoo model is trained and published.

Recipes are YAML files in ``packaging/recipes/`` (read with ``yaml.safe_load``); the shared
multi-task pretraining of the suite is ``packaging/suite.yaml``. This module only parses and
validates them; :mod:`unifmir.zoo.build` executes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from unifmir.tasks import TASK_NAMES

__all__ = ["Recipe", "SuiteConfig", "load_recipe", "load_recipes", "load_suite", "RecipeError",
           "default_packaging_dir"]


class RecipeError(ValueError):
    """A recipe file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataRecipe(_Strict):
    """Where the training pairs come from: a synthetic generator (``synthetic``: ``n`` fixed pairs;
    ``randomized``: pairs drawn on the fly over the task's domain, ``n`` held-out pairs) or a
    folder in our layout."""

    source: Literal["synthetic", "randomized", "folder"] = "synthetic"
    path: str | None = None
    structure: str | None = None
    n: int = Field(48, ge=2)
    test_fraction: float = Field(0.25, gt=0, lt=1)
    size: int | None = None
    seed: int = 0
    params: dict[str, Any] = Field(default_factory=dict)


class TrainRecipe(_Strict):
    """Fine-tuning budget (steps on this CPU with the model preset)."""

    steps: int = Field(300, ge=1)
    lr: float = 1e-4
    batch_size: int = Field(4, ge=1)
    patch_size: int | None = None
    val_every: int = Field(100, ge=1)
    init: str = "suite"
    """``suite`` (the shared pretrained checkpoint), ``scratch``, or a checkpoint path."""
    loss: Literal["l1", "l2"] = "l1"
    """``l1`` (the UniFMIR reference's) or ``l2`` (see :class:`unifmir.training.losses.StagedL1`)."""


class Author(_Strict):
    name: str
    affiliation: str | None = None
    orcid: str | None = None
    github_user: str | None = None


class Metadata(_Strict):
    """bioimage.io metadata of the bundle."""

    name: str
    description: str
    tags: list[str] = Field(default_factory=list)
    authors: list[Author] = Field(default_factory=lambda: [Author(name="unifmir contributors")])
    cite: list[str] = Field(default_factory=lambda: ["unifmir"])
    license: str = "MIT"
    version: str = "0.1.0"
    training_data: str = ""
    operating_range: str = ""
    """Markdown: the acquisitions the bundle was trained for (pixel size, PSF, photons, z factor)."""
    git_repo: str = ""
    """Repository with the training code (bioimage.io ``git_repo``); empty: not stated."""

    @field_validator("name")
    @classmethod
    def _short_name(cls, v: str) -> str:
        if len(v) > 64:
            raise ValueError(f"name has {len(v)} characters; bioimage.io allows at most 64")
        return v


class Recipe(_Strict):
    """One suite model."""

    id: str
    task: str
    preset: str = "small"
    model: dict[str, Any] = Field(default_factory=dict)
    """Model config fields over the preset (e.g. ``unet_stem``/``unet_widths``); tensors whose
    shapes then differ from the suite pretraining start fresh in fine-tuning."""
    data: DataRecipe = Field(default_factory=DataRecipe)
    finetune: TrainRecipe = Field(default_factory=TrainRecipe)
    metadata: Metadata
    export: dict[str, Any] = Field(default_factory=dict)
    notes: str = ""
    """Shown under the suite table (e.g. why the model does not beat its baseline)."""
    compare_scratch: bool = False
    """Also train the same network from scratch with the same budget and data, and report it
    beside this model (the transfer claim: does the suite pretraining help on new data?)."""

    @field_validator("model")
    @classmethod
    def _valid_model_fields(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v:
            from unifmir.model.config import resolve_config

            resolve_config({"preset": "small", **v})  # raises naming the bad field
        return v

    def record(self, *fields: str) -> dict[str, Any]:
        """JSON dump (of ``fields``, default all) for digests and step records.

        An empty ``model``, ``notes`` and the default ``finetune.loss`` are left out, so recipes
        keep the digests (and cached builds) they had before these fields existed.
        """
        d = self.model_dump(mode="json", include=set(fields) if fields else None)
        if not d.get("model"):
            d.pop("model", None)
        if d.get("finetune", {}).get("loss") == "l1":
            d["finetune"].pop("loss")
        d.pop("notes", None)  # suite-table text only: never a reason to rebuild a bundle
        return d

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        if v not in TASK_NAMES:
            raise ValueError(f"unknown task {v!r}; choose one of {', '.join(TASK_NAMES)}")
        return v


class PretrainTask(_Strict):
    task: str
    data: DataRecipe = Field(default_factory=DataRecipe)


class SuiteConfig(_Strict):
    """The suite's shared multi-task pretraining."""

    preset: str = "small"
    steps: int = Field(600, ge=1)
    lr: float = 5e-5
    batch_size: int = Field(4, ge=1)
    task_sampling: Literal["step", "epoch"] = "step"
    seed: int = 0
    tasks: list[PretrainTask]


def default_packaging_dir() -> Path:
    """The repository's ``packaging/`` folder (next to the installed source tree)."""
    return Path(__file__).resolve().parents[2] / "packaging"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise RecipeError(f"recipe file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise RecipeError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise RecipeError(f"{path} must hold a YAML mapping, got {type(data).__name__}")
    return data


def load_recipe(path: str | Path) -> Recipe:
    """Parse and validate one recipe file."""
    try:
        return Recipe.model_validate(_read_yaml(Path(path)))
    except ValidationError as err:
        raise RecipeError(f"invalid recipe {path}:\n{err}") from err


def load_recipes(packaging_dir: str | Path | None = None) -> dict[str, Recipe]:
    """All recipes in ``packaging/recipes/*.yaml``, keyed by id (ids must be unique)."""
    folder = Path(packaging_dir or default_packaging_dir()) / "recipes"
    recipes: dict[str, Recipe] = {}
    for path in sorted(folder.glob("*.yaml")):
        recipe = load_recipe(path)
        if recipe.id in recipes:
            raise RecipeError(f"recipe id {recipe.id!r} appears twice (second time in {path})")
        recipes[recipe.id] = recipe
    if not recipes:
        raise RecipeError(f"no recipes found in {folder}")
    return recipes


def load_suite(packaging_dir: str | Path | None = None) -> SuiteConfig:
    """The shared pretraining description ``packaging/suite.yaml``."""
    path = Path(packaging_dir or default_packaging_dir()) / "suite.yaml"
    try:
        return SuiteConfig.model_validate(_read_yaml(path))
    except ValidationError as err:
        raise RecipeError(f"invalid suite file {path}:\n{err}") from err
