"""UNetA: the light-field -> volume first stage of the volumetric (VCD) task.

Faithful to the reference (cxm12/UNiFMIR ``model/swinir.py::UNetA``); its channel widths are
hard-coded there and are the defaults here (``stem``/``widths`` make a narrower variant). ``conv2d`` 7x7 ``in -> 128``; four ``(conv + PixelShuffle(2)) + conv``
stages (16x upscaling, 128 -> 8 channels); ``conv2d1``/``conv2d2`` Conv-BN-ReLU; a 5-level encoder
(Conv-BN-ReLU, channel zero-padded residual, MaxPool 3/2 floor mode); a decoder (concat skip ->
Conv -> ReLU -> BN -> bilinear resize, ``align_corners=False``) ending at ``11 H x 11 W`` and
``tanh``.

Bilinear resizing calls ``torch.ops.aten.upsample_bilinear2d`` directly: scripting
``F.interpolate`` would drag ops that libtorch 2.0 lacks into exported TorchScript. The result
equals ``F.interpolate(x, size, mode="bilinear", align_corners=False)``.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import Tensor, nn

__all__ = ["UNetA", "resize_bilinear", "UNETA_PYRAMID", "UNETA_STEM", "UNETA_WIDTHS", "UNETA_UPSCALE"]

UNETA_PYRAMID: List[int] = [128, 256, 512, 512, 512]
"""Encoder widths (hard-coded in the reference)."""
UNETA_STEM: int = 128
"""Stem width (hard-coded in the reference)."""
UNETA_WIDTHS: tuple = (64, *UNETA_PYRAMID)
"""Input-conv width, then the encoder levels (the reference's; ``ModelConfig.unet_widths`` default)."""
UNETA_UPSCALE: int = 11
OUTPUT_BIAS: float = -1.5
"""Initial bias of the output BatchNorm: ``tanh(-1.5) = -0.905``, near the VCD background (-1)
while ``tanh`` still passes 18 % of the gradient (at the background itself it passes none)."""
"""Output size factor (11 x 11 lenslets)."""


def resize_bilinear(x: Tensor, h: int, w: int) -> Tensor:
    """``F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)`` via the aten op."""
    return torch.ops.aten.upsample_bilinear2d(x, [h, w], False, None, None)


class _Upsample2(nn.Sequential):
    """``Conv(4c -> 4c) + PixelShuffle(2)`` (reference ``Upsample2``)."""

    def __init__(self, num_feat: int) -> None:
        super().__init__(nn.Conv2d(4 * num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2))


class UNetA(nn.Module):
    """UNetA(num_in_ch=121, n_slices=61): ``(B, 121, H, W)`` -> ``(B, 61, 11H, 11W)`` in ``[-1, 1]``."""

    def __init__(
        self,
        num_in_ch: int = 121,
        n_slices: int = 61,
        stem: int = UNETA_STEM,
        widths: Sequence[int] = UNETA_WIDTHS,
    ) -> None:
        super().__init__()
        self.upscale = UNETA_UPSCALE
        channels = int(stem)
        inch = int(widths[0])
        pyramid = [int(c) for c in widths[1:]]
        self.conv2d = nn.Conv2d(num_in_ch, channels, 7, 1, 3)
        layers: List[nn.Module] = []
        for _ in range(4):
            channels = channels // 2
            layers.append(nn.Sequential(_Upsample2(channels // 2), nn.Conv2d(channels // 2, channels, 3, 1, 1)))
        self.layers = nn.ModuleList(layers)
        self.conv2d1 = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
        )
        first = inch
        self.conv2d2 = nn.Sequential(nn.Conv2d(channels, inch, 3, 1, 1), nn.BatchNorm2d(inch), nn.ReLU(inplace=True))
        enc: List[nn.Module] = []
        for nc in pyramid:
            enc.append(nn.Sequential(nn.Conv2d(inch, nc, 3, 1, 1), nn.BatchNorm2d(nc), nn.ReLU(inplace=True)))
            inch = nc
        self.encoder_layers = nn.ModuleList(enc)
        dec: List[nn.Module] = []
        for idx in range(len(pyramid) - 1, -1, -1):
            if idx > 0:
                cin, cout = pyramid[idx] + pyramid[idx - 1], pyramid[idx - 1]
            else:
                cin, cout = pyramid[0] + first, n_slices
            dec.append(nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.ReLU(inplace=True), nn.BatchNorm2d(cout)))
        self.decoder_layers = nn.ModuleList(dec)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2)  # floor mode
        self._init_convs()

    def _init_convs(self) -> None:
        """He (fan-in) initialisation, zero biases. The reference keeps PyTorch's default
        (uniform, a = sqrt(5)), which shrinks the signal ~1.7x per layer: through the stem and the
        eight linear upsampling convolutions the light field's contrast falls below the biases and
        a new UNetA outputs nearly the same volume for any input. Gain 1 along that linear chain,
        the ReLU gain in the Conv-BN-ReLU blocks.

        The output BatchNorm (before ``tanh``) starts with bias ``OUTPUT_BIAS``: VCD normalisation
        puts the background, most of a light-field volume, at -1, and from bias 0 Adam moves the
        bias only ~lr per step, so at lr 1e-3 the first ~1500 steps went into reaching the
        background level instead of the signal (stage-1 L1 0.83 -> 0.67 in 120 steps)."""
        linear = {id(self.conv2d), *(id(m) for m in self.layers.modules() if isinstance(m, nn.Conv2d))}
        for conv in self.modules():
            if isinstance(conv, nn.Conv2d):
                if id(conv) in linear:
                    nn.init.kaiming_normal_(conv.weight, nonlinearity="linear")
                else:
                    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)
        last = self.decoder_layers[-1]
        assert isinstance(last, nn.Sequential)
        out_norm = last[-1]
        assert isinstance(out_norm, nn.BatchNorm2d)
        nn.init.constant_(out_norm.bias, OUTPUT_BIAS)

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[2], x.shape[3]
        x = self.conv2d(x)
        for layer in self.layers:
            x = layer(x)
        x = self.conv2d2(self.conv2d1(x))
        skips: List[Tensor] = []
        for layer in self.encoder_layers:
            skips.append(x)
            y = layer(x)
            # zero-padded channel residual: the first C_in channels get the block input added
            c = x.shape[1]
            if c == y.shape[1]:
                y = y + x
            else:
                y = torch.cat([y[:, :c] + x, y[:, c:]], dim=1)
            x = self.pool(y)
        x = resize_bilinear(x, skips[-1].shape[2], skips[-1].shape[3])
        idx = len(skips) - 1
        for layer in self.decoder_layers:
            if idx > 0:
                h0, w0 = skips[idx - 1].shape[2], skips[idx - 1].shape[3]
            else:
                h0, w0 = H * self.upscale, W * self.upscale
            x = layer(torch.cat([skips[idx], x], dim=1))
            x = resize_bilinear(x, h0, w0)
            idx -= 1
        # the reference resizes once more to (11H, 11W): the size already matches (identity)
        return torch.tanh(x)
