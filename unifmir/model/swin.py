"""SwinIR body: window attention with relative position bias, shifted-window Swin layers, RSTB.

Faithful to the SwinIR code used by the UniFMIR reference (cxm12/UNiFMIR, ``model/swinir.py``):
patch size 1, no absolute position embedding, LayerNorm (eps 1e-5), exact-erf GELU, attention
scale ``head_dim ** -0.5`` on ``q``, cyclic shift ``window_size // 2`` on odd blocks with mask value
``-100``. Shifted blocks keep an ``attn_mask`` buffer for ``img_size x img_size`` inputs (a
state_dict key of the official checkpoints) that is used only when the padded input has exactly
that size; for every other size the mask is computed once per forward pass and shared.

Everything here is TorchScript-compatible and uses only torch ops available in torch 2.0.
This module imports nothing from the rest of the package (it is inlined into exported
architecture files).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DropPath",
    "Mlp",
    "window_partition",
    "window_reverse",
    "window_order",
    "window_order_inverse",
    "relative_position_index",
    "calculate_mask",
    "WindowAttention",
    "SwinTransformerBlock",
    "BasicLayer",
    "RSTB",
    "PatchEmbed",
    "PatchUnEmbed",
    "SwinBackbone",
    "pad_to_multiple",
    "ATTENTION_IMPLS",
]

ATTENTION_IMPLS: Tuple[str, str] = ("sdpa", "matmul")
"""Attention implementations: ``sdpa`` = ``F.scaled_dot_product_attention``, ``matmul`` = explicit."""

MASK_VALUE: float = -100.0
"""Additive attention-mask value between tokens of different shifted regions (reference)."""


class DropPath(nn.Module):
    """Stochastic depth per sample (identity in eval or with ``drop_prob == 0``)."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        shape = [x.shape[0]] + [1] * (x.dim() - 1)
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f}"


class Mlp(nn.Module):
    """Transformer MLP: ``fc1 -> GELU (exact erf) -> fc2``."""

    def __init__(self, in_features: int, hidden_features: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()  # approximate="none": exact erf, as the reference
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def window_partition(x: Tensor, window_size: int) -> Tensor:
    """``(B, H, W, C)`` -> ``(B * nW, window_size, window_size, C)`` (row-major window order)."""
    B, H, W, C = x.shape
    x = x.view(B, H // window_size, window_size, W // window_size, window_size, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, C)


def window_reverse(windows: Tensor, window_size: int, H: int, W: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, ws, ws, C)`` -> ``(B, H, W, C)``."""
    C = windows.shape[-1]
    B = windows.shape[0] // ((H // window_size) * (W // window_size))
    x = windows.view(B, H // window_size, W // window_size, window_size, window_size, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, C)


def window_order(H: int, W: int, window_size: int, shift_size: int, device: Optional[torch.device] = None) -> Tensor:
    """Raster index of every token in (cyclically shifted) window order, int64 ``[H * W]``.

    ``tokens.index_select(1, window_order(...))`` on ``(B, H*W, C)`` tokens equals
    ``window_partition(torch.roll(x, (-shift, -shift), (1, 2)), ws)`` flattened, in one gather.
    """
    idx = torch.arange(H * W, device=device).view(1, H, W, 1)
    if shift_size > 0:
        idx = torch.roll(idx, shifts=(-shift_size, -shift_size), dims=(1, 2))
    return window_partition(idx, window_size).reshape(-1)


def window_order_inverse(
    H: int, W: int, window_size: int, shift_size: int, device: Optional[torch.device] = None
) -> Tensor:
    """Inverse permutation of :func:`window_order`: window-order position of every raster token."""
    idx = torch.arange(H * W, device=device).view(-1, window_size, window_size, 1)
    out = window_reverse(idx, window_size, H, W)
    if shift_size > 0:
        out = torch.roll(out, shifts=(shift_size, shift_size), dims=(1, 2))
    return out.reshape(-1)


def relative_position_index(window_size: int) -> Tensor:
    """Pair-wise relative position index ``[ws*ws, ws*ws]`` (int64) into the bias table."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    )  # 2, ws, ws
    flat = torch.flatten(coords, 1)  # 2, N
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()  # N, N, 2
    rel[:, :, 0] += window_size - 1
    rel[:, :, 1] += window_size - 1
    rel[:, :, 0] *= 2 * window_size - 1
    return rel.sum(-1)


def calculate_mask(
    H: int, W: int, window_size: int, shift_size: int, device: Optional[torch.device] = None
) -> Tensor:
    """Shifted-window attention mask ``[nW, ws*ws, ws*ws]`` (float32, values 0 / -100).

    Same values as the reference's slice-based construction: the padded image is split into
    3 x 3 regions (``[0, H-ws)``, ``[H-ws, H-shift)``, ``[H-shift, H)`` and the same along W) and
    tokens of different regions inside one window must not attend to each other.
    """
    rows = torch.arange(H, device=device)
    cols = torch.arange(W, device=device)
    rid = (rows >= H - window_size).to(torch.float32) + (rows >= H - shift_size).to(torch.float32)
    cid = (cols >= W - window_size).to(torch.float32) + (cols >= W - shift_size).to(torch.float32)
    img_mask = (rid[:, None] * 3.0 + cid[None, :]).view(1, H, W, 1)
    mw = window_partition(img_mask, window_size).view(-1, window_size * window_size)
    diff = mw.unsqueeze(1) - mw.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0)  # MASK_VALUE (a literal for TorchScript)


class WindowAttention(nn.Module):
    """Window multi-head self-attention with a learned relative position bias.

    Args:
        dim: token channels.
        window_size: window side (square windows).
        num_heads: attention heads (``dim`` must be divisible by it).
        qkv_bias: learn a bias for the q, k, v projection.
        attention: ``"sdpa"`` (``F.scaled_dot_product_attention`` with bias + mask as additive
            ``attn_mask``; its default scale equals the reference's ``head_dim ** -0.5``) or
            ``"matmul"`` (the reference's explicit ``softmax(q * scale @ k^T + bias + mask) @ v``).
    """

    def __init__(
        self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True, attention: str = "sdpa"
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_IMPLS:
            raise ValueError(f"attention must be one of {ATTENTION_IMPLS}, got {attention!r}")
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.use_sdpa = attention == "sdpa"
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) * (2 * window_size - 1), num_heads)
        )
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    @property
    def attention(self) -> str:
        """The attention implementation in use (``"sdpa"`` or ``"matmul"``)."""
        return "sdpa" if self.use_sdpa else "matmul"

    def set_attention(self, attention: str) -> None:
        """Switch the attention implementation (weights unchanged)."""
        if attention not in ATTENTION_IMPLS:
            raise ValueError(f"attention must be one of {ATTENTION_IMPLS}, got {attention!r}")
        self.use_sdpa = attention == "sdpa"

    def relative_position_bias(self) -> Tensor:
        """The bias ``[num_heads, N, N]`` gathered from the table."""
        n = self.window_size * self.window_size
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1).contiguous()

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``x``: ``(B * nW, N, C)`` windows; ``mask``: ``(nW, N, N)`` additive mask or None."""
        B_, N, C = x.shape
        qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        bias = self.relative_position_bias()
        if self.use_sdpa:
            if mask is None:
                out = F.scaled_dot_product_attention(q, k, v, bias.unsqueeze(0))
            elif mask.shape[0] == B_ and not torch.jit.is_tracing():
                # one image: the (nW, nH, N, N) bias + mask matches the windows; q, k, v stay strided
                # views of the qkv output (the fused kernel reads them in place, no copies). Not while
                # tracing: a trace (ONNX, TorchScript fallback) would bake this branch in for batch 1
                out = F.scaled_dot_product_attention(q, k, v, bias.unsqueeze(0) + mask.unsqueeze(1))
            else:
                # windows x heads as the "heads" dim of 4-D inputs: the (nW*nH, N, N) bias + mask
                # broadcasts over the batch without a copy and CPU/GPU fused kernels apply
                nW = mask.shape[0]
                shape = [B_ // nW, nW * self.num_heads, N, C // self.num_heads]
                attn_mask = (bias.unsqueeze(0) + mask.unsqueeze(1)).reshape(1, nW * self.num_heads, N, N)
                out = F.scaled_dot_product_attention(
                    q.reshape(shape), k.reshape(shape), v.reshape(shape), attn_mask
                ).reshape(B_, self.num_heads, N, C // self.num_heads)
        else:
            q = q * self.scale
            attn = q @ k.transpose(-2, -1) + bias.unsqueeze(0)
            if mask is not None:
                nW = mask.shape[0]
                attn = attn.view(B_ // nW, nW, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.num_heads, N, N)
            out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(B_, N, C))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, num_heads={self.num_heads}, attention={self.attention}"


class SwinTransformerBlock(nn.Module):
    """Swin Transformer block (W-MSA when ``shift_size == 0``, SW-MSA otherwise) + MLP.

    ``input_resolution`` is the side of the square ``img_size`` for which the ``attn_mask``
    buffer is stored. As in the reference, if ``input_resolution <= window_size`` the window
    shrinks to ``input_resolution`` and the shift is disabled.
    """

    def __init__(
        self,
        dim: int,
        input_resolution: int,
        num_heads: int,
        window_size: int = 8,
        shift_size: int = 0,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        attention: str = "sdpa",
    ) -> None:
        super().__init__()
        if input_resolution <= window_size:
            shift_size = 0
            window_size = input_resolution
        if not 0 <= shift_size < window_size:
            raise ValueError("shift_size must be in [0, window_size)")
        self.dim = dim
        self.input_resolution = input_resolution
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift_size = shift_size
        self.mlp_ratio = mlp_ratio
        if shift_size > 0:
            self.register_buffer(
                "attn_mask", calculate_mask(input_resolution, input_resolution, window_size, shift_size)
            )
        else:  # not a state_dict key (the reference registers None)
            self.register_buffer("attn_mask", torch.zeros(0), persistent=False)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias=qkv_bias, attention=attention)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, x_size: Tuple[int, int], mask: Optional[Tensor] = None) -> Tensor:
        """``x``: ``(B, H*W, C)`` in raster order; ``mask``: precomputed shifted mask for ``x_size`` (or None).

        The stored ``attn_mask`` is used when ``x_size == (img_size, img_size)``; otherwise
        ``mask`` (or, if None, a freshly computed one). Same result as the reference's
        roll -> window partition -> attention -> window reverse -> roll, with one gather each way.
        """
        H, W = x_size
        order = window_order(H, W, self.window_size, self.shift_size, x.device)
        inverse = window_order_inverse(H, W, self.window_size, self.shift_size, x.device)
        return self.forward_windows(x.index_select(1, order), x_size, mask).index_select(1, inverse)

    def forward_windows(self, x: Tensor, x_size: Tuple[int, int], mask: Optional[Tensor] = None) -> Tensor:
        """``x``: ``(B, H*W, C)`` tokens already in this block's :func:`window_order` -> same order.

        LayerNorm, MLP and the residuals act per token, so only the attention needs the window
        layout and a whole stage can stay in window order (:class:`BasicLayer`).
        """
        H, W = x_size
        B, L, C = x.shape
        ws = self.window_size
        if self.shift_size > 0:
            if H == self.input_resolution and W == self.input_resolution:
                attn_mask: Optional[Tensor] = self.attn_mask
            elif mask is not None:
                attn_mask = mask
            else:
                attn_mask = calculate_mask(H, W, ws, self.shift_size, x.device).to(x.dtype)
        else:
            attn_mask = None
        y = self.attn(self.norm1(x).view(-1, ws * ws, C), attn_mask).view(B, L, C)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, input_resolution={self.input_resolution}, num_heads={self.num_heads}, "
            f"window_size={self.window_size}, shift_size={self.shift_size}, mlp_ratio={self.mlp_ratio}"
        )


class BasicLayer(nn.Module):
    """A stage of ``depth`` Swin blocks; odd blocks are shifted by ``window_size // 2``."""

    def __init__(
        self,
        dim: int,
        input_resolution: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        drop_path: Sequence[float] = (),
        attention: str = "sdpa",
    ) -> None:
        super().__init__()
        dpr = list(drop_path) if len(drop_path) else [0.0] * depth
        self.blocks = nn.ModuleList(
            [
                SwinTransformerBlock(
                    dim,
                    input_resolution,
                    num_heads,
                    window_size=window_size,
                    shift_size=0 if i % 2 == 0 else window_size // 2,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    drop_path=dpr[i],
                    attention=attention,
                )
                for i in range(depth)
            ]
        )

    def forward(self, x: Tensor, x_size: Tuple[int, int], mask: Optional[Tensor] = None) -> Tensor:
        """``x``: ``(B, H*W, C)`` raster tokens -> same. The tokens stay in window order between
        blocks: one gather per block (from the previous block's order to this one's) and one back."""
        H, W = x_size
        inverse: Optional[Tensor] = None  # raster token -> position in the current order
        for blk in self.blocks:
            order = window_order(H, W, blk.window_size, blk.shift_size, x.device)
            x = x.index_select(1, order if inverse is None else inverse.index_select(0, order))
            x = blk.forward_windows(x, x_size, mask)
            inverse = window_order_inverse(H, W, blk.window_size, blk.shift_size, x.device)
        if inverse is not None:
            x = x.index_select(1, inverse)
        return x


class PatchEmbed(nn.Module):
    """Image ``(B, C, H, W)`` -> tokens ``(B, H*W, C)`` (patch size 1), optional LayerNorm."""

    def __init__(self, embed_dim: int, norm: bool = True) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.norm = nn.LayerNorm(embed_dim, eps=1e-5) if norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.flatten(2).transpose(1, 2))


class PatchUnEmbed(nn.Module):
    """Tokens ``(B, H*W, C)`` -> image ``(B, C, H, W)`` (patch size 1, no parameters)."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim

    def forward(self, x: Tensor, x_size: Tuple[int, int]) -> Tensor:
        B = x.shape[0]
        return x.transpose(1, 2).reshape(B, self.embed_dim, x_size[0], x_size[1])


class RSTB(nn.Module):
    """Residual Swin Transformer Block: Swin stage -> 3x3 conv -> + input."""

    def __init__(
        self,
        dim: int,
        input_resolution: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        drop_path: Sequence[float] = (),
        attention: str = "sdpa",
    ) -> None:
        super().__init__()
        self.dim = dim
        self.residual_group = BasicLayer(
            dim, input_resolution, depth, num_heads, window_size, mlp_ratio, qkv_bias, drop_path, attention
        )
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(dim, norm=False)
        self.patch_unembed = PatchUnEmbed(dim)

    def forward(self, x: Tensor, x_size: Tuple[int, int], mask: Optional[Tensor] = None) -> Tensor:
        y = self.residual_group(x, x_size, mask)
        return self.patch_embed(self.conv(self.patch_unembed(y, x_size))) + x


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Reflect-pad an NCHW tensor at the bottom/right to a multiple of ``multiple`` (reference)."""
    h, w = x.shape[2], x.shape[3]
    ph = (multiple - h % multiple) % multiple
    pw = (multiple - w % multiple) % multiple
    if ph == 0 and pw == 0:
        return x
    if ph >= h or pw >= w:
        raise ValueError(
            "input of " + str(h) + " x " + str(w) + " pixels is too small to reflect-pad to a multiple of "
            + str(multiple) + "; give at least " + str(multiple // 2 + 1) + " pixels per side or a multiple of "
            + str(multiple)
        )
    return F.pad(x, [0, pw, 0, ph], mode="reflect")


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.0)
    elif isinstance(m, nn.LayerNorm):
        nn.init.constant_(m.bias, 0.0)
        nn.init.constant_(m.weight, 1.0)


class SwinBackbone(nn.Module):
    """Base class of every network with the shared SwinIR body.

    Subclasses call :meth:`_build_body` at the point of ``__init__`` where the body's attributes
    (``patch_embed``, ``layers``, ``norm``, ``conv_after_body``) belong in state_dict order, and
    use :meth:`forward_features` (tokens -> LayerNorm -> image, without ``conv_after_body``).
    """

    def _build_body(
        self,
        img_size: int,
        embed_dim: int,
        depths: Sequence[int],
        num_heads: Sequence[int],
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop_path_rate: float,
        attention: str,
    ) -> None:
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {tuple(depths)} and num_heads {tuple(num_heads)} differ in length")
        self.img_size = int(img_size)
        self.window_size = int(window_size)
        self.embed_dim = int(embed_dim)
        # effective window and shift of the blocks (reference: shrink if img_size <= window)
        self.block_window = min(self.window_size, self.img_size)
        self.has_shift = self.img_size > self.window_size and max(depths) > 1
        self.patch_embed = PatchEmbed(embed_dim, norm=True)
        self.patch_unembed = PatchUnEmbed(embed_dim)
        dpr = [float(v) for v in torch.linspace(0, drop_path_rate, sum(depths)).tolist()]
        layers: List[nn.Module] = []
        for i, (d, h) in enumerate(zip(depths, num_heads)):
            start = sum(depths[:i])
            layers.append(
                RSTB(embed_dim, img_size, d, h, window_size, mlp_ratio, qkv_bias, dpr[start : start + d], attention)
            )
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-5)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1)

    def set_attention(self, attention: str) -> None:
        """Switch every window attention to ``"sdpa"`` or ``"matmul"``."""
        for m in self.modules():
            if isinstance(m, WindowAttention):
                m.set_attention(attention)

    def check_image_size(self, x: Tensor) -> Tensor:
        """Reflect-pad bottom/right to a multiple of ``window_size``."""
        return pad_to_multiple(x, self.window_size)

    def forward_features(self, x: Tensor) -> Tensor:
        """Swin body on a padded image ``(B, embed_dim, H, W)`` -> same shape (before conv_after_body)."""
        H, W = x.shape[2], x.shape[3]
        x_size = (H, W)
        mask: Optional[Tensor] = None
        if self.has_shift and not (H == self.img_size and W == self.img_size):
            ws = self.block_window
            mask = calculate_mask(H, W, ws, ws // 2, x.device).to(x.dtype)
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x, x_size, mask)
        x = self.norm(x)
        return self.patch_unembed(x, x_size)
