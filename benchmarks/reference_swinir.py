"""The reference SwinIR forward (cxm12/UNiFMIR ``model/swinir.py``), explicit-matmul formulation, as a speed baseline.

``reference_forward(net, x)`` runs a :class:`unifmir.model.single.SwinIRNet`'s weights through the
reference's own sequence of operations: LayerNorm -> ``torch.roll`` -> ``window_partition``
(permute + contiguous) -> ``q * scale @ k^T`` + relative-position bias gathered from the table +
mask -> softmax -> ``@ v`` -> ``window_reverse`` -> ``torch.roll``, the shifted-window mask
recomputed in every block when the input is not ``img_size`` (as the reference does). Only the
benchmark uses it; the result equals ``net(x)`` within 1e-5 (checked by the benchmark).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from unifmir.model.single import SwinIRNet
from unifmir.model.swin import RSTB, SwinTransformerBlock, WindowAttention, calculate_mask

__all__ = ["reference_forward"]


def _partition(x: Tensor, ws: int) -> Tensor:
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, C)


def _reverse(windows: Tensor, ws: int, H: int, W: int) -> Tensor:
    B = int(windows.shape[0] / (H * W / ws / ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


def _attention(a: WindowAttention, x: Tensor, mask: Optional[Tensor]) -> Tensor:
    B_, N, C = x.shape
    qkv = a.qkv(x).reshape(B_, N, 3, a.num_heads, C // a.num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    q = q * a.scale
    attn = q @ k.transpose(-2, -1)
    bias = a.relative_position_bias_table[a.relative_position_index.view(-1)].view(N, N, -1)
    attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
    if mask is not None:
        nW = mask.shape[0]
        attn = attn.view(B_ // nW, nW, a.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, a.num_heads, N, N)
    attn = torch.softmax(attn, dim=-1)
    return a.proj((attn @ v).transpose(1, 2).reshape(B_, N, C))


def _block(b: SwinTransformerBlock, x: Tensor, x_size: Tuple[int, int]) -> Tensor:
    H, W = x_size
    B, L, C = x.shape
    ws, s = b.window_size, b.shift_size
    shortcut = x
    x = b.norm1(x).view(B, H, W, C)
    if s > 0:
        x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
    windows = _partition(x, ws).view(-1, ws * ws, C)
    mask = None
    if s > 0:
        mask = b.attn_mask if (H, W) == (b.input_resolution, b.input_resolution) else calculate_mask(H, W, ws, s)
    x = _reverse(_attention(b.attn, windows, mask).view(-1, ws, ws, C), ws, H, W)
    if s > 0:
        x = torch.roll(x, shifts=(s, s), dims=(1, 2))
    x = shortcut + x.view(B, H * W, C)
    return x + b.mlp(b.norm2(x))


def _rstb(r: RSTB, x: Tensor, x_size: Tuple[int, int]) -> Tensor:
    y = x
    for blk in r.residual_group.blocks:
        y = _block(blk, y, x_size)
    B = y.shape[0]
    img = y.transpose(1, 2).view(B, r.dim, x_size[0], x_size[1])
    return r.conv(img).flatten(2).transpose(1, 2) + x


def reference_forward(net: SwinIRNet, x: Tensor) -> Tensor:
    """The reference ``swinir.forward`` with ``net``'s weights (eval mode, no drop path)."""
    H, W = x.shape[2], x.shape[3]
    f = net.conv_first(net.check_image_size(x))
    x_size = (f.shape[2], f.shape[3])
    t = net.patch_embed(f)
    for layer in net.layers:
        t = _rstb(layer, t, x_size)
    t = net.norm(t)
    body = t.transpose(1, 2).view(t.shape[0], net.embed_dim, x_size[0], x_size[1])
    y = net.conv_after_body(body)
    if net.long_skip:
        y = y + f
    y = net.conv_last(net.upsample(net.conv_before_upsample(y)))
    if net.crop:
        y = y[:, :, : H * net.upscale, : W * net.upscale]
    return y
