"""The multi-task UniFMIR network (reference ``UniModel``, branch ``pretrain``).

One shared SwinIR body (``patch_embed``, ``layers``, ``norm``, ``conv_after_body``) with per-task
heads and tails, key-for-key equal to the reference pretraining checkpoints (724 keys at full
size). ``forward(x, task="sr", return_stages=False)``; ``task`` is a task name or the reference's
index 1..5. Semantics (reference, README of the fixtures, section 3):

* tasks 1-3 (``sr``, ``denoise``, ``isotropic``): pad -> head -> body + long skip ->
  ``conv_before_upsample0`` -> (``upsamplesr`` for SR) -> ``conv_last0``; NOT cropped;
* task 4 (``projection``): ``x2d = pad(project(x))``; ``out = conv_last0(conv_before_upsample0(
  conv_after_body(body(conv_firstproj(x2d))))) + x2d``; returns ``(x2d, out)``;
* task 5 (``volumetric``): pad -> ``xunet = conv_first0(x)`` -> ``conv_firstv`` -> body (no long
  skip) -> ``conv_before_upsamplev`` -> ``conv_lastv``; returns ``(xunet, out)``.

The head/tail attribute names are the reference's (and ``TaskSpec.head`` / ``TaskSpec.tail``);
this module takes channel counts as plain arguments (``factory.build_model`` passes them from
``unifmir.tasks.TASKS``); only the default name -> index map is read from the registry.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

from torch import Tensor, nn

from unifmir.tasks import TASKS

from .enlcn import ENLCN
from .single import make_upsampler
from .swin import SwinBackbone, _init_weights
from .unet import UNETA_STEM, UNETA_WIDTHS, UNetA

__all__ = ["UniFMIR", "UNIFMIR_TASK_INDEX"]

UNIFMIR_TASK_INDEX: Dict[str, int] = {name: spec.index for name, spec in TASKS.items()}
"""Default task name -> reference task index (``TaskSpec.index``); overridable in the constructor."""


class UniFMIR(SwinBackbone):
    """Multi-task UniFMIR (reference ``UniModel``).

    Args:
        img_size, embed_dim, depths, num_heads, window_size, mlp_ratio, qkv_bias, num_feat,
            drop_path_rate: shared SwinIR body and tail (official defaults).
        enlcn_feats, enlcn_resblocks, enlcn_res_scale: projection head (256, 64, 0.1).
        sr_scale: SR upscaling of ``upsamplesr`` (2).
        sr_in_chans, denoise_in_chans, iso_in_chans, proj_in_chans, vol_in_chans, vol_out_chans:
            task channels (1, 5, 1, 50, 121, 61).
        attention: ``"sdpa"`` or ``"matmul"``.
        unet_stem, unet_widths: UNetA widths (reference: 128; 64, 128, 256, 512, 512, 512).
        task_index: task name -> reference index 1..5 (accepted in ``forward`` instead of names).
    """

    def __init__(
        self,
        img_size: int = 64,
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
        sr_scale: int = 2,
        sr_in_chans: int = 1,
        denoise_in_chans: int = 5,
        iso_in_chans: int = 1,
        proj_in_chans: int = 50,
        vol_in_chans: int = 121,
        vol_out_chans: int = 61,
        attention: str = "sdpa",
        unet_stem: int = UNETA_STEM,
        unet_widths: Sequence[int] = UNETA_WIDTHS,
        task_index: Optional[Dict[str, int]] = None,
    ) -> None:
        super().__init__()
        self.task: Optional[str] = None
        self.task_index: Dict[str, int] = dict(task_index or UNIFMIR_TASK_INDEX)
        self.index_task: Dict[int, str] = {v: k for k, v in self.task_index.items()}
        self.sr_scale = int(sr_scale)
        # 1 SR
        self.conv_firstsr = nn.Conv2d(sr_in_chans, embed_dim, 3, 1, 1)
        self.upsamplesr = make_upsampler(self.sr_scale, num_feat)
        # 2 denoise
        self.conv_firstdT = nn.Conv2d(denoise_in_chans, embed_dim, 3, 1, 1)
        # 3 isotropic
        self.conv_firstiso = nn.Conv2d(iso_in_chans, embed_dim, 3, 1, 1)
        # 4 projection
        self.project = ENLCN(proj_in_chans, 1, enlcn_feats, enlcn_resblocks, enlcn_res_scale)
        self.conv_firstproj = nn.Conv2d(1, embed_dim, 3, 1, 1)
        # 5 volumetric
        self.conv_first0 = UNetA(vol_in_chans, vol_out_chans, unet_stem, unet_widths)
        self.conv_firstv = nn.Conv2d(vol_out_chans, embed_dim, 3, 1, 1)
        self.conv_before_upsamplev = nn.Sequential(nn.Conv2d(embed_dim, embed_dim, 3, 1, 1), nn.LeakyReLU(0.01))
        self.conv_lastv = nn.Conv2d(embed_dim, vol_out_chans, 3, 1, 1)
        # shared body and tail
        self._build_body(
            img_size, embed_dim, depths, num_heads, window_size, mlp_ratio, qkv_bias, drop_path_rate, attention
        )
        self.conv_before_upsample0 = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(0.01))
        self.upsample = nn.Sequential()  # reference Upsample(1): no parameters
        self.conv_last0 = nn.Conv2d(num_feat, 1, 3, 1, 1)
        self.apply(_init_weights)

    def task_name(self, task: Union[str, int]) -> str:
        """Normalise a task name or reference index (1..5) to the task name."""
        if isinstance(task, int) and not isinstance(task, bool):
            if task not in self.index_task:
                raise ValueError(f"unknown task index {task}; valid: {sorted(self.index_task)}")
            return self.index_task[task]
        if task not in self.task_index:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(self.task_index)}")
        return str(task)

    def _head_tail(self, x: Tensor, head: nn.Module) -> Tensor:
        x = self.check_image_size(x)
        f = head(x)
        return self.conv_before_upsample0(self.conv_after_body(self.forward_features(f)) + f)

    def forward_sr(self, x: Tensor) -> Tensor:
        """Task 1: ``(B, 1, H, W)`` -> ``(B, 1, sr_scale * H', sr_scale * W')`` (padded size, no crop)."""
        return self.conv_last0(self.upsamplesr(self._head_tail(x, self.conv_firstsr)))

    def forward_denoise(self, x: Tensor) -> Tensor:
        """Task 2: ``(B, 5, H, W)`` -> ``(B, 1, H', W')`` (padded size)."""
        return self.conv_last0(self.upsample(self._head_tail(x, self.conv_firstdT)))

    def forward_isotropic(self, x: Tensor) -> Tensor:
        """Task 3: ``(B, 1, H, W)`` -> ``(B, 1, H', W')`` (padded size)."""
        return self.conv_last0(self.upsample(self._head_tail(x, self.conv_firstiso)))

    def forward_projection(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Task 4: ``(B, 50, H, W)`` -> ``(x2d, out)``, both ``(B, 1, H', W')`` (padded size)."""
        x2d = self.check_image_size(self.project(x))
        f = self.conv_firstproj(x2d)
        y = self.conv_last0(self.conv_before_upsample0(self.conv_after_body(self.forward_features(f))))
        return x2d, y + x2d

    def forward_volumetric(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Task 5: ``(B, 121, H, W)`` -> ``(xunet, out)``, both ``(B, 61, 11H', 11W')``."""
        xunet = self.conv_first0(self.check_image_size(x))
        y = self.conv_after_body(self.forward_features(self.conv_firstv(xunet)))
        return xunet, self.conv_lastv(self.conv_before_upsamplev(y))

    def forward_stages(self, x: Tensor, task: Union[str, int]) -> Tuple[Tensor, ...]:
        """All outputs of ``task``: ``(final,)`` or ``(stage1, final)`` for two-stage tasks."""
        name = self.task_name(task)
        out = getattr(self, f"forward_{name}")(x)
        return out if isinstance(out, tuple) else (out,)

    def forward(
        self, x: Tensor, task: Union[str, int] = "sr", return_stages: bool = False
    ) -> Union[Tensor, Tuple[Tensor, ...]]:
        """Run ``task`` (name or index 1..5); two-stage tasks return ``(stage1, final)`` if asked."""
        outs = self.forward_stages(x, task)
        return outs if return_stages and len(outs) == 2 else outs[-1]
