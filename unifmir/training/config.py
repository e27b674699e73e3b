"""Validated training configuration (pydantic), loadable from and saved to YAML.

One :class:`TrainConfig` describes a whole run: which model (a preset name plus overrides), which
data (one dataset folder per task), the optimiser, the schedule, the loss, logging,
checkpointing and early stopping. The same object drives fine-tuning (one task) and multi-task
pretraining (several tasks); :attr:`TrainConfig.mode` says which.

Defaults follow the reference recipes (the training scripts of github.com/cxm12/UNiFMIR): Adam
(0.9, 0.999), L1 loss, MultiStepLR with gamma 0.5, lr 1e-4 for fine-tuning and 5e-5 for
pretraining, patch and batch sizes from the task registry (:mod:`unifmir.tasks`), and the staged
losses of the projection and volumetric tasks, whose reference epochs are mapped onto steps with
:attr:`ScheduleSection.steps_per_epoch`.

:func:`finetune_config` and :func:`pretrain_config` build configs for the two presets: ``full``
(the reference recipe) and ``small`` (a CPU-friendly model, small patches and batches).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from unifmir._atomic import atomic_path
from unifmir.model.config import PRESETS, ModelConfig, resolve_config
from unifmir.tasks import TASK_NAMES, get_task

__all__ = [
    "ModelSection",
    "check_model_overrides",
    "DataSection",
    "OptimSection",
    "ScheduleSection",
    "LossSection",
    "LoggingSection",
    "CheckpointSection",
    "EarlyStopping",
    "TrainConfig",
    "ConfigError",
    "load_config",
    "save_config",
    "with_absolute_paths",
    "config_from_dict",
    "ConfigChanges",
    "change_config_dict",
    "apply_changes",
    "finetune_config",
    "pretrain_config",
    "TRAIN_PRESETS",
    "FINETUNE_LR",
    "PRETRAIN_LR",
]

FINETUNE_LR = 1e-4
"""Reference fine-tuning learning rate."""
PRETRAIN_LR = 5e-5
"""Reference pretraining learning rate."""
TRAIN_PRESETS = ("full", "small")
"""Names accepted by :func:`finetune_config` / :func:`pretrain_config`."""

MIN_PATCH = 8
"""Smallest training patch side (input pixels): the Swin window."""

# The small preset's patch size: the registry's default divided by this, and its batch cap.
_SMALL_PATCH_DIVISOR = 2
_SMALL_MAX_BATCH = 4


class ConfigError(ValueError):
    """A configuration is invalid; the message lists every problem with its field path."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    """Which network to build: a preset of :mod:`unifmir.model.config` plus field overrides.

    ``overrides`` are :class:`~unifmir.model.config.ModelConfig` fields passed to
    ``resolve_config`` (e.g. ``{"embed_dim": 60}`` or, for a new task variant, ``{"upscale": 1}``).
    When training starts from a checkpoint, the checkpoint's own configuration is used and only
    ``overrides`` are applied on top of it. Names and value types are checked when the config
    is loaded (:func:`check_model_overrides`); from scratch, the whole network configuration is.
    """

    preset: str = "full"
    overrides: dict[str, Any] = Field(default_factory=dict)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str) -> str:
        if v not in PRESETS:
            raise ValueError(f"unknown model preset {v!r}; choose one of {', '.join(PRESETS)}")
        return v

    @field_validator("overrides")
    @classmethod
    def _model_fields(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_model_overrides(v)


def check_model_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` unchanged (as a dict) if every key is a ``ModelConfig`` field with a value of its type.

    Raises ``ValueError`` naming the unknown keys (with the closest field name and the list of
    valid ones) or the values of the wrong type. Cross-field rules (``embed_dim`` divisible by
    every ``num_heads`` ...) need the configuration the overrides apply to and are checked when
    it is resolved.
    """
    fields = ModelConfig.model_fields
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        hints = [f" (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(k, fields, 1)) else ""
                 for k in unknown]
        named = ", ".join(f"{k!r}{hint}" for k, hint in zip(unknown, hints))
        raise ValueError(f"unknown model field{'s' if len(unknown) > 1 else ''} {named}; "
                         f"the ModelConfig fields are {', '.join(fields)}")
    problems = []
    for key, value in overrides.items():
        try:
            TypeAdapter(fields[key].annotation).validate_python(value)
        except ValidationError as err:
            problems.append(f"{key}={value!r}: {err.errors()[0]['msg']}")
    if problems:
        raise ValueError("; ".join(problems))
    return dict(overrides)


class DataSection(_Section):
    """Where the data lie and how patches are drawn.

    ``roots`` maps each task name to a dataset folder in the ``unifmir synth`` layout
    (``DIR/train/{input,target}``, ``DIR/test/...`` and optionally ``DIR/val/...``).
    ``patch_size`` / ``batch_size`` are either one value for every task or a per-task mapping;
    ``None`` takes the task registry's default. ``batch_size`` is the *global* batch: under
    DistributedDataParallel it is split evenly across processes.
    """

    roots: dict[str, Path] = Field(default_factory=dict)
    patch_size: int | dict[str, int] | None = None
    batch_size: int | dict[str, int] | None = None
    workers: int = Field(0, ge=0)
    augment: bool = True
    val_split: str = "auto"
    """``auto``: ``val`` when the folder has one, else ``test``; or an explicit split name."""
    val_samples: int = Field(16, ge=1)
    """Number of fixed validation patches per task (drawn once, without augmentation)."""
    val_patch_size: int | dict[str, int] | None = None
    """Validation patch size; ``None`` = the training patch size."""

    @field_validator("roots")
    @classmethod
    def _known_tasks(cls, v: dict[str, Path]) -> dict[str, Path]:
        for name in v:
            get_task(name)
        return v

    @field_validator("patch_size", "val_patch_size", "batch_size")
    @classmethod
    def _positive(cls, v: int | dict[str, int] | None, info: Any) -> int | dict[str, int] | None:
        least = 1 if info.field_name == "batch_size" else MIN_PATCH
        values = v.values() if isinstance(v, dict) else ([] if v is None else [v])
        bad = [x for x in values if x < least]
        if bad:
            raise ValueError(f"must be at least {least}, got {bad[0]}")
        if isinstance(v, dict):
            for name in v:
                get_task(name)
        return v

    def patch_for(self, task: str, *, validation: bool = False) -> int | None:
        """Patch size for ``task`` (``None`` = the dataset's registry default)."""
        value = self.val_patch_size if validation and self.val_patch_size is not None else self.patch_size
        if isinstance(value, dict):
            return value.get(task)
        return value

    def batch_for(self, task: str) -> int:
        """Global batch size for ``task`` (registry default when unset)."""
        value = self.batch_size
        if isinstance(value, dict):
            value = value.get(task)
        return int(value) if value is not None else get_task(task).batch_size


class OptimSection(_Section):
    """Adam, as in the reference (betas 0.9/0.999, no weight decay)."""

    name: Literal["adam", "adamw"] = "adam"
    lr: float = Field(FINETUNE_LR, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(None, gt=0)
    """Clip the global gradient norm to this value (``None``: no clipping, as the reference)."""


class ScheduleSection(_Section):
    """Length of the run and learning-rate schedule (MultiStepLR), all in optimiser steps.

    ``milestones=None`` halves (``gamma``) the learning rate at 50 % and 75 % of ``steps``.
    ``steps_per_epoch`` converts the reference's epoch-based settings into steps: the end of each
    staged-loss phase (``LossPhase.until_epoch``) and, in pretraining with
    ``task_sampling="epoch"``, how long one task is kept. ``loss_phase_steps`` overrides the
    phase ends directly (one step number per phase that has an ``until_epoch``).
    """

    steps: int = Field(1000, ge=1)
    milestones: list[int] | None = None
    gamma: float = Field(0.5, gt=0, le=1)
    steps_per_epoch: int = Field(100, ge=1)
    loss_phase_steps: list[int] | None = None

    @field_validator("milestones")
    @classmethod
    def _sorted(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (any(m < 1 for m in v) or list(v) != sorted(v)):
            raise ValueError("milestones must be positive step numbers in increasing order")
        return v

    def resolved_milestones(self) -> list[int]:
        """The MultiStepLR milestones in steps."""
        if self.milestones is not None:
            return list(self.milestones)
        return sorted({max(1, self.steps // 2), max(1, (3 * self.steps) // 4)})


class LossSection(_Section):
    """Loss recipe: ``kind`` L1 (the reference's) or L2; staged weights come from the registry.

    ``stage_weights`` optionally replaces the registry's phases of a task by one fixed weighting,
    e.g. ``{"projection": {"stage1": 0.001, "final": 1.0}}``.
    """

    kind: Literal["l1", "l2"] = "l1"
    stage_weights: dict[str, dict[str, float]] = Field(default_factory=dict)

    @field_validator("stage_weights")
    @classmethod
    def _valid_stages(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for task, weights in v.items():
            spec = get_task(task)
            bad = sorted(set(weights) - set(spec.stages))
            if bad:
                raise ValueError(f"task {task!r} has outputs {list(spec.stages)}, not {bad}")
        return v


class LoggingSection(_Section):
    """CSV log, PNG plot and progress bar."""

    log_every: int = Field(10, ge=1)
    """Write a training-loss row (the mean since the last row) every N steps."""
    progress: bool = True
    plot: bool = True


class CheckpointSection(_Section):
    """Validation and checkpoint cadence.

    Every ``val_every`` steps the model is validated (``care`` protocol PSNR/SSIM/NRMSE), the best
    model (by ``monitor``) is written to ``best.pt`` and the current one to ``last.pt`` plus the
    exact-resume state ``train_state.pt``. ``save_every`` adds resume points between
    validations (``None``: only at validations and at the end).
    """

    val_every: int = Field(100, ge=1)
    save_every: int | None = Field(None, ge=1)
    monitor: Literal["val_psnr", "val_ssim", "val_loss", "val_nrmse"] = "val_psnr"
    protocol: Literal["care", "unifmir"] = "care"
    validate_at_start: bool = True
    """Validate (and checkpoint) the initial model at step 0: a baseline and a first good checkpoint."""


class EarlyStopping(_Section):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` validations."""

    enabled: bool = False
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0)


class TrainConfig(_Section):
    """A complete training run.

    ``mode="finetune"`` trains one single-task network (``tasks`` has one entry);
    ``mode="pretrain"`` trains the multi-task network on every task in ``tasks``, sampling one
    task per step or per epoch (``task_sampling``). ``init`` is ``"scratch"``, a path to one of
    our checkpoints or to any official checkpoint. ``freeze_body`` trains only the task
    head/tail. ``device`` is ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``; ``amp``
    (mixed precision) only applies on CUDA.
    """

    mode: Literal["finetune", "pretrain"] = "finetune"
    tasks: list[str] = Field(default_factory=lambda: ["sr"])
    init: str = "scratch"
    freeze_body: bool = False
    task_sampling: Literal["step", "epoch"] = "epoch"
    task_weights: dict[str, float] | None = None
    """Relative task sampling probabilities in pretraining (``None``: uniform)."""
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    loss: LossSection = Field(default_factory=LossSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    checkpoint: CheckpointSection = Field(default_factory=CheckpointSection)
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"
    cpu_bf16: bool = False
    """bf16 autocast on the CPU (fp32 master weights and optimiser, no loss scaling), set by
    ``--precision bf16``/``auto`` where the CPU has AMX or AVX-512-BF16; off by default."""
    deterministic: bool = True
    enla_redraw_interval: int | None = Field(640, ge=1)
    """Projection head: redraw the ENLA random features every N training calls (reference: 640;
    ``None``: never)."""
    """Seeded, deterministic algorithms (CPU is bit-reproducible for a fixed thread count)."""

    @field_validator("tasks")
    @classmethod
    def _tasks_known(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one task is needed")
        for name in v:
            get_task(name)
        if len(set(v)) != len(v):
            raise ValueError(f"tasks listed twice: {v}")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        ok = v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit())
        if not ok:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.mode == "finetune" and len(self.tasks) != 1:
            raise ValueError(
                f"fine-tuning trains one task, got tasks={self.tasks}; use mode: pretrain for several"
            )
        if self.mode == "pretrain" and self.freeze_body:
            raise ValueError("pretraining trains all parameters; freeze_body is for fine-tuning")
        if self.init == "scratch":  # the whole network configuration is known: check it now
            try:
                resolve_config({"preset": self.model.preset, **self.model.overrides})
            except ValueError as err:
                why = ("; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
                       if isinstance(err, ValidationError) else str(err))
                raise ValueError(f"model.overrides {self.model.overrides} on preset {self.model.preset!r}: "
                                 f"{why}") from None
        missing = [t for t in self.tasks if t not in self.data.roots]
        if missing:
            raise ValueError(
                f"no dataset folder for task(s) {missing}: set data.roots.<task> to a folder "
                "made by `unifmir synth` or laid out the same way"
            )
        if self.task_weights is not None:
            extra = sorted(set(self.task_weights) - set(self.tasks))
            if extra or any(w < 0 for w in self.task_weights.values()) or not any(
                self.task_weights.get(t, 0) > 0 for t in self.tasks
            ):
                raise ValueError(
                    "task_weights must give non-negative weights to tasks in `tasks` "
                    f"(at least one positive); got {self.task_weights}"
                )
        if self.schedule.loss_phase_steps is not None:
            for t in self.tasks:
                n = sum(1 for p in get_task(t).loss if p.until_epoch is not None)
                if n and len(self.schedule.loss_phase_steps) != n:
                    raise ValueError(
                        f"schedule.loss_phase_steps needs {n} value(s) for task {t!r}, "
                        f"got {self.schedule.loss_phase_steps}"
                    )
        return self

    # -- conversions -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain, YAML-safe dict (paths as strings)."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The config as YAML text (loadable by :func:`load_config`)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def task(self) -> str:
        """The fine-tuned task (the first task in pretraining)."""
        return self.tasks[0]


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid training configuration ({source}):"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<top level>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown setting (check the spelling; see unifmir.training.config for the fields)"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def config_from_dict(data: Mapping[str, Any], source: str = "dict") -> TrainConfig:
    """Validate a mapping into a :class:`TrainConfig`; raise :class:`ConfigError` listing problems."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"invalid training configuration ({source}): expected a mapping, got {type(data).__name__}")
    try:
        return TrainConfig.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML file (``yaml.safe_load``) into a validated :class:`TrainConfig`.

    Relative dataset paths are resolved against the YAML file's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML ({' '.join(str(err).split())}); fix the file (tags such as "
                          "!!python/... are never read)") from None
    if data is None:
        data = {}
    cfg = config_from_dict(data, source=str(path))
    roots = {t: (p if p.is_absolute() else (path.parent / p)) for t, p in cfg.data.roots.items()}
    cfg.data.roots = roots
    if cfg.init not in ("scratch",) and not Path(cfg.init).is_absolute() and (path.parent / cfg.init).exists():
        cfg.init = str(path.parent / cfg.init)
    return cfg


def with_absolute_paths(config: TrainConfig) -> TrainConfig:
    """A copy of ``config`` whose dataset folders (and an existing ``init`` file) are absolute.

    Paths in a config built in Python are relative to the working directory, while
    :func:`load_config` resolves relative paths against the YAML file's folder; a saved config
    (next to every checkpoint, read again on resume) therefore stores absolute paths.
    """
    cfg = config.model_copy(deep=True)
    cfg.data.roots = {t: Path(p).absolute() for t, p in cfg.data.roots.items()}
    if cfg.init != "scratch" and Path(cfg.init).exists():
        cfg.init = str(Path(cfg.init).absolute())
    return cfg


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as YAML (paths made absolute, :func:`with_absolute_paths`), atomically."""
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(with_absolute_paths(config).to_yaml())
    return path


# -- changes on top of a config (command-line options) -----------------------------------------


@dataclass(frozen=True)
class ConfigChanges:
    """Settings given on top of a training config, e.g. by command-line options.

    ``None`` (and an empty ``model_overrides``) keeps the config's value. ``task`` makes that task
    the one fine-tuned task and ``data`` the dataset folder of the (first) task; ``roots``
    replaces the dataset folders and trains their tasks (pretraining). ``model_overrides`` are
    merged into ``model.overrides``; ``early_stopping`` (a patience in validations) turns early
    stopping on with that patience.
    """

    mode: Literal["finetune", "pretrain"] | None = None
    task: str | None = None
    data: str | Path | None = None
    roots: Mapping[str, str | Path] | None = None
    init: str | Path | None = None
    preset: str | None = None
    freeze_body: bool | None = None
    task_sampling: Literal["step", "epoch"] | None = None
    model_overrides: Mapping[str, Any] = field(default_factory=dict)
    steps: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    patch_size: int | None = None
    workers: int | None = None
    val_every: int | None = None
    seed: int | None = None
    device: str | None = None
    amp: bool | None = None
    amp_dtype: Literal["bfloat16", "float16"] | None = None
    cpu_bf16: bool | None = None
    early_stopping: int | None = None


# ConfigChanges field -> (section or None for a top-level key, key)
_PLAIN_CHANGES: tuple[tuple[str, str | None, str], ...] = (
    ("mode", None, "mode"),
    ("init", None, "init"),
    ("preset", "model", "preset"),
    ("freeze_body", None, "freeze_body"),
    ("task_sampling", None, "task_sampling"),
    ("steps", "schedule", "steps"),
    ("lr", "optim", "lr"),
    ("batch_size", "data", "batch_size"),
    ("patch_size", "data", "patch_size"),
    ("workers", "data", "workers"),
    ("val_every", "checkpoint", "val_every"),
    ("seed", None, "seed"),
    ("device", None, "device"),
    ("amp", None, "amp"),
    ("amp_dtype", None, "amp_dtype"),
    ("cpu_bf16", None, "cpu_bf16"),
)


def change_config_dict(data: Mapping[str, Any], changes: ConfigChanges) -> dict[str, Any]:
    """A copy of the config dict ``data`` with ``changes`` applied (not validated).

    Only the given settings are written: unchanged sections are not added.
    """
    d = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}

    def section(name: str) -> dict[str, Any]:
        out: dict[str, Any] = d.setdefault(name, {})
        return out

    if changes.task is not None:
        d["tasks"] = [changes.task]
    if changes.data is not None:
        tasks = d.get("tasks") or TrainConfig.model_fields["tasks"].get_default(call_default_factory=True)
        section("data")["roots"] = {tasks[0]: str(changes.data)}
    if changes.roots is not None:
        section("data")["roots"] = {t: str(p) for t, p in changes.roots.items()}
        d["tasks"] = list(changes.roots)
    for name, where, key in _PLAIN_CHANGES:
        value = getattr(changes, name)
        if value is not None:
            (section(where) if where is not None else d)[key] = str(value) if name == "init" else value
    if changes.model_overrides:
        model = section("model")
        model["overrides"] = {**model.get("overrides", {}), **changes.model_overrides}
    if changes.early_stopping is not None:
        d["early_stopping"] = {"enabled": True, "patience": changes.early_stopping}
    return d


def apply_changes(config: TrainConfig, changes: ConfigChanges, source: str = "changes") -> TrainConfig:
    """``config`` with ``changes`` applied, validated (:class:`ConfigError` names ``source``)."""
    return config_from_dict(change_config_dict(config.to_dict(), changes), source=source)


# -- presets ------------------------------------------------------------------------------------


def _small_patch(task: str) -> int:
    spec = get_task(task)
    # Keep the patch a multiple of the lenslet grid for light-field inputs.
    unit = spec.lenslets or 8
    return max(unit, (spec.patch_size // _SMALL_PATCH_DIVISOR) // unit * unit)


def _preset_sections(preset: str, tasks: Sequence[str], steps: int | None) -> dict[str, Any]:
    if preset not in TRAIN_PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(TRAIN_PRESETS)}")
    if preset == "full":
        return {
            "model": {"preset": "full"},
            "data": {},
            "schedule": {"steps": steps or 20000, "steps_per_epoch": 500},
            "checkpoint": {"val_every": 500},
            "logging": {"log_every": 50},
        }
    n = steps or 300
    return {
        "model": {"preset": "small"},
        "data": {
            "patch_size": {t: _small_patch(t) for t in TASK_NAMES},
            "batch_size": {t: min(_SMALL_MAX_BATCH, get_task(t).batch_size) for t in TASK_NAMES},
            "val_samples": 8,
        },
        "schedule": {"steps": n, "steps_per_epoch": max(1, n // 10)},
        "checkpoint": {"val_every": max(1, n // 6)},
        "logging": {"log_every": max(1, min(10, n // 20))},
    }


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def finetune_config(
    task: str,
    data: str | Path,
    init: str | Path = "scratch",
    preset: str = "small",
    steps: int | None = None,
    *,
    lr: float | None = None,
    freeze_body: bool = False,
    device: str = "auto",
    seed: int = 0,
    model_overrides: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """A fine-tuning config for ``task`` on the dataset folder ``data``.

    ``init``: ``"scratch"``, one of our checkpoints or any official checkpoint. ``preset``:
    ``full`` (reference recipe: registry patch/batch, lr 1e-4) or ``small`` (CPU-friendly).
    ``model_overrides`` go to the model config (e.g. ``{"upscale": 1}`` for SR at scale 1);
    ``overrides`` is a nested dict merged over the result (e.g. ``{"checkpoint": {"val_every": 5}}``).
    """
    get_task(task)
    d = _preset_sections(preset, [task], steps)
    d.update(mode="finetune", tasks=[task], init=str(init), freeze_body=freeze_body, device=device, seed=seed)
    d["data"]["roots"] = {task: str(data)}
    d["optim"] = {"lr": lr if lr is not None else FINETUNE_LR}
    if model_overrides:
        d["model"]["overrides"] = dict(model_overrides)
    if overrides:
        d = _merge(d, overrides)
    return config_from_dict(d, source="finetune_config")


def pretrain_config(
    data: Mapping[str, str | Path],
    preset: str = "small",
    steps: int | None = None,
    *,
    init: str | Path = "scratch",
    task_sampling: Literal["step", "epoch"] = "epoch",
    lr: float | None = None,
    device: str = "auto",
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """A multi-task pretraining config; ``data`` maps each task to its dataset folder."""
    tasks = list(data)
    d = _preset_sections(preset, tasks, steps)
    d.update(mode="pretrain", tasks=tasks, init=str(init), task_sampling=task_sampling, device=device, seed=seed)
    d["data"]["roots"] = {t: str(p) for t, p in data.items()}
    d["optim"] = {"lr": lr if lr is not None else PRETRAIN_LR}
    if overrides:
        d = _merge(d, overrides)
    return config_from_dict(d, source="pretrain_config")

