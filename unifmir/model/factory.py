"""``build_model``: a task name (or None) and a :class:`ModelConfig` -> an untrained network.

The task -> network-class mapping is data: :data:`VARIANT_BUILDERS` is keyed by
``TaskSpec.released_variant`` (the released checkpoint format of each task); task facts
(channels, scale, index) come from :data:`unifmir.tasks.TASKS`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, overload

from ..tasks import TASKS, TaskSpec, get_task
from .config import ModelConfig, resolve_config
from .multitask import UniFMIR
from .network import Network, SingleTaskNetwork, attach_config
from .single import ProjectionNet, SwinIRNet, VolumetricNet

__all__ = ["build_model", "VARIANT_BUILDERS", "single_task_kwargs", "unifmir_kwargs", "body_kwargs"]


def body_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    """Constructor keywords of the shared SwinIR body."""
    return dict(
        img_size=cfg.img_size,
        embed_dim=cfg.embed_dim,
        depths=tuple(cfg.depths),
        num_heads=tuple(cfg.num_heads),
        window_size=cfg.window_size,
        mlp_ratio=cfg.mlp_ratio,
        qkv_bias=cfg.qkv_bias,
        drop_path_rate=cfg.drop_path_rate,
        attention=cfg.attention,
    )


def _swinir(spec: TaskSpec, cfg: ModelConfig) -> dict[str, Any]:
    return dict(
        in_chans=cfg.in_chans or spec.net_in_channels,
        out_chans=spec.net_out_channels,
        upscale=cfg.upscale if cfg.upscale is not None else spec.scale,
        num_feat=cfg.num_feat,
        task=spec.name,
        **body_kwargs(cfg),
    )


def _projection(spec: TaskSpec, cfg: ModelConfig) -> dict[str, Any]:
    return dict(
        in_chans=cfg.in_chans or spec.net_in_channels,
        out_chans=spec.net_out_channels,
        num_feat=cfg.num_feat,
        enlcn_feats=cfg.enlcn_feats,
        enlcn_resblocks=cfg.enlcn_resblocks,
        enlcn_res_scale=cfg.enlcn_res_scale,
        variant=cfg.projection_variant,
        task=spec.name,
        **body_kwargs(cfg),
    )


def _volumetric(spec: TaskSpec, cfg: ModelConfig) -> dict[str, Any]:
    return dict(
        in_chans=cfg.in_chans or spec.net_in_channels,
        out_chans=spec.net_out_channels,
        unet_stem=cfg.unet_stem,
        unet_widths=tuple(cfg.unet_widths),
        task=spec.name,
        **body_kwargs(cfg),
    )


VARIANT_BUILDERS: Mapping[str, tuple[type[SingleTaskNetwork], Callable[[TaskSpec, ModelConfig], dict[str, Any]]]] = {
    "swinir_x2_in1": (SwinIRNet, _swinir),
    "swinir_x1_in1": (SwinIRNet, _swinir),
    "swinir_x1_in5": (SwinIRNet, _swinir),
    "swinirProj_stage2": (ProjectionNet, _projection),
    "swinir2dto3d": (VolumetricNet, _volumetric),
}
"""Released single-task format (``TaskSpec.released_variant``) -> (network class, keyword builder)."""


def unifmir_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    """Constructor keywords of :class:`UniFMIR` for ``cfg`` (channels from the task registry)."""
    t = TASKS
    return dict(
        num_feat=cfg.num_feat,
        enlcn_feats=cfg.enlcn_feats,
        enlcn_resblocks=cfg.enlcn_resblocks,
        enlcn_res_scale=cfg.enlcn_res_scale,
        sr_scale=cfg.upscale if cfg.upscale is not None else t["sr"].scale,
        sr_in_chans=t["sr"].net_in_channels,
        denoise_in_chans=t["denoise"].net_in_channels,
        iso_in_chans=t["isotropic"].net_in_channels,
        proj_in_chans=t["projection"].net_in_channels,
        vol_in_chans=t["volumetric"].net_in_channels,
        vol_out_chans=t["volumetric"].net_out_channels,
        unet_stem=cfg.unet_stem,
        unet_widths=tuple(cfg.unet_widths),
        task_index={name: spec.index for name, spec in t.items()},
        **body_kwargs(cfg),
    )


def single_task_kwargs(
    task: str | TaskSpec, config: ModelConfig | str | Mapping[str, Any] = "full"
) -> tuple[type[SingleTaskNetwork], dict[str, Any]]:
    """``(network class, constructor keywords)`` that ``build_model(task, config)`` uses."""
    spec, cfg = get_task(task), resolve_config(config)
    try:
        cls, make_kwargs = VARIANT_BUILDERS[spec.released_variant]
    except KeyError:
        raise ValueError(f"task {spec.name!r} has no network builder for {spec.released_variant!r}") from None
    return cls, make_kwargs(spec, cfg)


@overload
def build_model(task: None, config: ModelConfig | str | Mapping[str, Any] = ...) -> UniFMIR: ...


@overload
def build_model(task: str | TaskSpec, config: ModelConfig | str | Mapping[str, Any] = ...) -> SingleTaskNetwork: ...


@overload
def build_model(task: Optional[str | TaskSpec], config: ModelConfig | str | Mapping[str, Any] = ...) -> Network: ...


def build_model(task: Optional[str | TaskSpec], config: ModelConfig | str | Mapping[str, Any] = "full") -> Network:
    """Build an untrained network for ``task`` (a ``TASKS`` key) or the multi-task UniFMIR (None).

    ``config`` is a :class:`ModelConfig`, a preset name (``"full"``, ``"small"``) or a dict of
    fields. The returned module has attributes ``task`` (the task name, or None for UniFMIR) and
    ``config`` (the resolved :class:`ModelConfig`; read it with
    :func:`unifmir.model.network.network_config`), and is in training mode (call ``.eval()``).
    """
    cfg = resolve_config(config)
    model: Network
    if task is None:
        if cfg.in_chans is not None:
            raise ValueError("in_chans applies to single-task models only; the multi-task model uses the task registry")
        model = UniFMIR(**unifmir_kwargs(cfg))
    else:
        cls, kwargs = single_task_kwargs(task, cfg)
        model = cls(**kwargs)  # the task name is a constructor argument (kwargs["task"])
    return attach_config(model, cfg)
