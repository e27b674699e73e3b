"""Network hyper-parameters (:class:`ModelConfig`) and the named presets ``full`` and ``small``.

This is the only model module that uses pydantic; the network constructors take plain values.

Presets:

* ``full``: the official UniFMIR sizes (embed_dim 90, 3 RSTB x 6 Swin layers, 6 heads, window 8,
  ENLCN 256 features x 64 ResBlocks). Needed to load the official checkpoints.
* ``small``: trains on a CPU. embed_dim 24, 2 RSTB x 2 layers, 2 heads (head dim 12), window 8,
  ENLCN 32 features x 8 ResBlocks (ENLCA at body 0 and 9), ``img_size`` 64 (stored masks still
  match the default training patch), drop-path 0.1. Parameters: Swin body 37 k; SR 81 k,
  denoise 45 k, isotropic 44 k, projection 220 k; volumetric 19.1 M and multi-task 19.3 M because
  UNetA (volumetric stage 1) keeps the reference widths (19.0 M) at every preset; narrow it with
  ``unet_stem`` / ``unet_widths`` (the suite's volumetric recipe does).
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, model_validator

from .unet import UNETA_STEM, UNETA_WIDTHS

__all__ = ["ModelConfig", "PRESETS", "resolve_config"]


class ModelConfig(BaseModel):
    """Size hyper-parameters of the UniFMIR networks (defaults = official ``full`` sizes).

    ``in_chans`` / ``upscale`` override the task's ``net_in_channels`` / ``scale`` for
    single-task networks (``None`` = the task's value), e.g. SR at scale 1 for DeepBacs.
    ``projection_variant`` selects the released ``swinirProj_stage2`` behaviour (long skip +
    crop) or the multi-task UniModel task-4 behaviour (neither). ``attention`` selects the window
    attention implementation (``sdpa`` fast, ``matmul`` explicit; same numbers within 1e-6).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    img_size: int = 64
    embed_dim: int = 90
    depths: tuple[int, ...] = (6, 6, 6)
    num_heads: tuple[int, ...] = (6, 6, 6)
    window_size: int = 8
    mlp_ratio: float = 2.0
    qkv_bias: bool = True
    num_feat: int = 32
    drop_path_rate: float = 0.1
    enlcn_feats: int = 256
    enlcn_resblocks: int = 64
    enlcn_res_scale: float = 0.1
    in_chans: int | None = None
    upscale: int | None = None
    projection_variant: Literal["released", "unimodel"] = "released"
    attention: Literal["sdpa", "matmul"] = "sdpa"
    unet_stem: int = UNETA_STEM
    """UNetA (volumetric stage 1) stem width: 4 PixelShuffle stages halve it down to ``stem/16``."""
    unet_widths: tuple[int, ...] = UNETA_WIDTHS
    """UNetA widths: the input conv, then the encoder levels (reference: 64; 128-256-512-512-512).
    The reference hard-codes these (19 M parameters); narrower values make a compact network whose
    UNetA cannot load the official weights (used by the suite's volumetric bundle, ~20 MB limit)."""

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        errors = []
        for name in ("img_size", "embed_dim", "window_size", "num_feat", "enlcn_feats"):
            if getattr(self, name) < 1:
                errors.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.enlcn_resblocks < 0:
            errors.append(f"enlcn_resblocks must be >= 0, got {self.enlcn_resblocks}")
        if not self.depths or any(d < 1 for d in self.depths):
            errors.append(f"depths must be a non-empty tuple of positive ints, got {self.depths}")
        if len(self.num_heads) != len(self.depths):
            errors.append(
                f"num_heads {self.num_heads} must have one entry per stage of depths {self.depths}"
            )
        for h in self.num_heads:
            if h < 1 or self.embed_dim % h != 0:
                errors.append(f"embed_dim {self.embed_dim} must be divisible by every num_heads entry ({h})")
        if self.mlp_ratio <= 0:
            errors.append(f"mlp_ratio must be > 0, got {self.mlp_ratio}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            errors.append(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}")
        if self.enlcn_feats % 4 != 0:
            errors.append(f"enlcn_feats must be divisible by 4 (ENLCA reduction), got {self.enlcn_feats}")
        if self.in_chans is not None and self.in_chans < 1:
            errors.append(f"in_chans must be >= 1 or None, got {self.in_chans}")
        if self.upscale is not None and not (
            self.upscale == 3 or (self.upscale >= 1 and self.upscale & (self.upscale - 1) == 0)
        ):
            errors.append(f"upscale must be None, 1, 3 or a power of 2, got {self.upscale}")
        if self.unet_stem < 32 or self.unet_stem % 32 != 0:
            errors.append(f"unet_stem must be a positive multiple of 32 (4 halvings), got {self.unet_stem}")
        w = self.unet_widths
        if len(w) < 2 or any(c < 1 for c in w) or any(b < a for a, b in zip(w[1:], w[2:])) or w[1] < w[0]:
            errors.append(
                f"unet_widths must be >= 2 positive, non-decreasing widths (input conv, encoder levels), got {w}"
            )
        if errors:
            raise ValueError("; ".join(errors))
        return self


PRESETS: dict[str, ModelConfig] = {
    "full": ModelConfig(),
    "small": ModelConfig(
        embed_dim=24,
        depths=(2, 2),
        num_heads=(2, 2),
        enlcn_feats=32,
        enlcn_resblocks=8,
    ),
}
"""Named configurations: ``full`` (official) and ``small`` (CPU training)."""


def resolve_config(config: "ModelConfig | str | Mapping[str, Any]") -> ModelConfig:
    """Return a :class:`ModelConfig` from a config, a preset name or a dict of fields.

    A dict may contain ``"preset": name`` to start from a preset and override some fields.
    Raises ``ValueError`` for an unknown preset (naming the choices) or invalid fields.
    """
    if isinstance(config, ModelConfig):
        return config
    if isinstance(config, str):
        try:
            return PRESETS[config]
        except KeyError:
            raise ValueError(f"unknown model preset {config!r}; choose one of {', '.join(PRESETS)}") from None
    if isinstance(config, Mapping):
        fields = dict(config)
        preset = fields.pop("preset", None)
        base = resolve_config(preset).model_dump() if preset is not None else {}
        base.update(fields)
        return ModelConfig.model_validate(base)
    raise TypeError(f"expected a ModelConfig, a preset name or a dict, got {type(config).__name__}")
