"""Helpers for the prediction tests (a stand-in window network)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WindowNet(nn.Module):
    """Stand-in with the Swin properties that matter for tiling: a 3x3 conv, reflect padding to a
    multiple of 8, a mixing step inside each 8x8 window (so results depend on the window grid),
    a 3x3 conv and an optional pixel-shuffle x2; receptive-field radius 1 + 7 + 1 = 9."""

    def __init__(self, in_ch: int = 1, out_ch: int = 1, scale: int = 1) -> None:
        super().__init__()
        self.window_size = 8
        self.in_chans = in_ch
        self.upscale = scale
        self.c1 = nn.Conv2d(in_ch, 4, 3, 1, 1)
        self.c2 = nn.Conv2d(4, out_ch * scale * scale, 3, 1, 1)
        self.task = None

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[2], x.shape[3]
        ph, pw = (8 - H % 8) % 8, (8 - W % 8) % 8
        x = F.pad(x, [0, pw, 0, ph], mode="reflect") if (ph or pw) else x
        f = torch.tanh(self.c1(x))
        b, c, h, w = f.shape
        m = f.reshape(b, c, h // 8, 8, w // 8, 8).mean(dim=(3, 5), keepdim=True)
        f = (f.reshape(b, c, h // 8, 8, w // 8, 8) + torch.sin(3 * m)).reshape(b, c, h, w)
        y = self.c2(f)
        if self.upscale > 1:
            y = F.pixel_shuffle(y, self.upscale)
        return y[:, :, : H * self.upscale, : W * self.upscale]
