"""Single-task networks: the classes of the released fine-tuned UniFMIR checkpoints.

* :class:`SwinIRNet` = reference ``swinir`` (SR x2, denoising, isotropic reconstruction);
* :class:`ProjectionNet` = reference ``swinirProj_stage2`` (ENLCN head + SwinIR refinement), or,
  with ``variant="unimodel"``, the multi-task UniModel's task-4 path (no long skip, no crop);
* :class:`VolumetricNet` = reference ``swinir2dto3d`` (UNetA + SwinIR body with a 61-slice tail).

State_dict keys, shapes and order equal the released checkpoints. Constructors take plain
ints/tuples (official defaults); ``unifmir.model.factory.build_model`` maps a ``ModelConfig``
and a task onto them. All three script with ``torch.jit.script`` and run at any input size.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

from torch import Tensor, nn

from .enlcn import ENLCN
from .swin import SwinBackbone, _init_weights, pad_to_multiple
from .unet import UNETA_STEM, UNETA_WIDTHS, UNetA

__all__ = ["SwinIRNet", "ProjectionNet", "VolumetricNet", "make_upsampler", "PROJECTION_VARIANTS"]

PROJECTION_VARIANTS: Tuple[str, str] = ("released", "unimodel")


def make_upsampler(scale: int, num_feat: int) -> nn.Sequential:
    """SwinIR ``Upsample``: ``(conv -> PixelShuffle(2))`` x log2(scale), or PixelShuffle(3); empty for 1."""
    m: List[nn.Module] = []
    if scale >= 1 and (scale & (scale - 1)) == 0:
        for _ in range(int(round(math.log2(scale)))):
            m += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
    elif scale == 3:
        m += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
    else:
        raise ValueError(f"upscale {scale} is not supported; use 1, 3 or a power of 2")
    return nn.Sequential(*m)


class SwinIRNet(SwinBackbone):
    """Reference ``swinir``: ``conv_first`` -> Swin body (+ long skip) -> tail, padded and cropped.

    Forward: reflect-pad bottom/right to a multiple of ``window_size``; ``f = conv_first(x)``;
    ``x = conv_after_body(body(f)) + f``; ``conv_before_upsample`` (conv + LeakyReLU 0.01);
    ``upsample``; ``conv_last``; crop to ``(H * upscale, W * upscale)``.

    Args:
        img_size: size of the stored ``attn_mask`` buffers (64).
        in_chans / out_chans: image channels in and out.
        upscale: 1, 3 or a power of 2.
        embed_dim, depths, num_heads, window_size, mlp_ratio, qkv_bias, drop_path_rate: SwinIR body.
        num_feat: tail width (32).
        attention: ``"sdpa"`` or ``"matmul"`` (same numbers within 1e-6).
        crop: crop the padded output back (reference ``swinir``); False = UniModel tasks 1-3.
        long_skip: add ``conv_first``'s features after the body (False only for the UniModel
            projection path).
        task: task name stored on the module (``sr``, ``denoise``, ``isotropic``...).
    """

    def __init__(
        self,
        img_size: int = 64,
        in_chans: int = 1,
        out_chans: int = 1,
        upscale: int = 2,
        embed_dim: int = 90,
        depths: Sequence[int] = (6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6),
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        num_feat: int = 32,
        drop_path_rate: float = 0.1,
        attention: str = "sdpa",
        crop: bool = True,
        long_skip: bool = True,
        task: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.task = task
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.upscale = int(upscale)
        self.crop = bool(crop)
        self.long_skip = bool(long_skip)
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self._build_body(
            img_size, embed_dim, depths, num_heads, window_size, mlp_ratio, qkv_bias, drop_path_rate, attention
        )
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(0.01))
        self.upsample = make_upsampler(self.upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, out_chans, 3, 1, 1)
        self.apply(_init_weights)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W)`` -> ``(B, out_chans, H * upscale, W * upscale)``."""
        H, W = x.shape[2], x.shape[3]
        f = self.conv_first(self.check_image_size(x))
        y = self.conv_after_body(self.forward_features(f))
        if self.long_skip:
            y = y + f
        y = self.conv_last(self.upsample(self.conv_before_upsample(y)))
        if self.crop:
            y = y[:, :, : H * self.upscale, : W * self.upscale]
        return y


class ProjectionNet(nn.Module):
    """Reference ``swinirProj_stage2``: ENLCN projection head, then a SwinIR refinement.

    ``variant="released"`` (the released checkpoint's class): ``x2d = project(x)`` at input size;
    ``out = denoise(x2d) + x2d`` where ``denoise`` is a ``SwinIRNet(upscale=1, in_chans=1)`` with
    long skip, padding and crop. ``variant="unimodel"`` (UniModel task 4): ``x2d`` is reflect-padded
    to the window multiple, ``denoise`` has no long skip, and nothing is cropped (both outputs
    have the padded size). Keys are ``project.*`` and ``denoise.*`` in both variants.

    ``forward(x)`` returns the final image; ``forward_stages(x)`` / ``forward(x, True)``
    return ``(stage1, final)``.
    """

    def __init__(
        self,
        img_size: int = 64,
        in_chans: int = 50,
        out_chans: int = 1,
        embed_dim: int = 90,
        depths: Sequence[int] = (6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6),
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        num_feat: int = 32,
        drop_path_rate: float = 0.1,
        enlcn_feats: int = 256,
        enlcn_resblocks: int = 64,
        enlcn_res_scale: float = 0.1,
        variant: str = "released",
        attention: str = "sdpa",
        task: Optional[str] = None,
    ) -> None:
        super().__init__()
        if variant not in PROJECTION_VARIANTS:
            raise ValueError(f"variant must be one of {PROJECTION_VARIANTS}, got {variant!r}")
        self.task = task
        self.variant = variant
        self.unimodel = variant == "unimodel"
        self.window_size = window_size
        self.project = ENLCN(in_chans, out_chans, enlcn_feats, enlcn_resblocks, enlcn_res_scale)
        self.denoise = SwinIRNet(
            img_size=img_size,
            in_chans=out_chans,
            out_chans=out_chans,
            upscale=1,
            embed_dim=embed_dim,
            depths=depths,
            num_heads=num_heads,
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            num_feat=num_feat,
            drop_path_rate=drop_path_rate,
            attention=attention,
            crop=not self.unimodel,
            long_skip=not self.unimodel,
            task=None,
        )

    def set_attention(self, attention: str) -> None:
        """Switch the refinement's window attention implementation."""
        self.denoise.set_attention(attention)

    def forward_stages(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, in_chans, H, W)`` -> ``(stage1 projection, final)``, each ``(B, out_chans, H', W')``."""
        x2d = self.project(x)
        if self.unimodel:
            x2d = pad_to_multiple(x2d, self.window_size)
        return x2d, self.denoise(x2d) + x2d

    def forward(self, x: Tensor, return_stages: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Final image, or ``(stage1, final)`` with ``return_stages=True``."""
        stage1, out = self.forward_stages(x)
        if return_stages:
            return stage1, out
        return out


class VolumetricNet(SwinBackbone):
    """Reference ``swinir2dto3d``: UNetA (``conv_first0``), then a SwinIR body with its own tail.

    Forward: reflect-pad to a multiple of ``window_size``; ``xunet = conv_first0(x)`` (tanh,
    ``11H x 11W``, ``out_chans`` slices); ``out = conv_last(conv_before_upsample(conv_after_body(
    body(conv_first(xunet)))))`` with no long skip and no crop. ``forward_stages`` returns
    ``(xunet, out)``.
    """

    def __init__(
        self,
        img_size: int = 64,
        in_chans: int = 121,
        out_chans: int = 61,
        embed_dim: int = 90,
        depths: Sequence[int] = (6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6),
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.1,
        attention: str = "sdpa",
        unet_stem: int = UNETA_STEM,
        unet_widths: Sequence[int] = UNETA_WIDTHS,
        task: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.task = task
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.conv_first0 = UNetA(in_chans, out_chans, unet_stem, unet_widths)
        self.conv_first = nn.Conv2d(out_chans, embed_dim, 3, 1, 1)
        self._build_body(
            img_size, embed_dim, depths, num_heads, window_size, mlp_ratio, qkv_bias, drop_path_rate, attention
        )
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, embed_dim, 3, 1, 1), nn.LeakyReLU(0.01))
        self.conv_last = nn.Conv2d(embed_dim, out_chans, 3, 1, 1)
        self.apply(_init_weights)

    def forward_stages(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, in_chans, H, W)`` -> ``(UNetA volume, final volume)``, each ``(B, out_chans, 11H', 11W')``."""
        xunet = self.conv_first0(self.check_image_size(x))
        y = self.conv_after_body(self.forward_features(self.conv_first(xunet)))
        return xunet, self.conv_last(self.conv_before_upsample(y))

    def forward(self, x: Tensor, return_stages: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Final volume, or ``(stage1, final)`` with ``return_stages=True``."""
        stage1, out = self.forward_stages(x)
        if return_stages:
            return stage1, out
        return out
