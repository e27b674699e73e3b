"""ENLCN projection head: ResBlocks with efficient non-local contrastive attention (ENLCA / ENLA).

Faithful to the reference (cxm12/UNiFMIR ``model/enlcn.py``, ``model/attention.py``,
``model/common.py``): head conv ``in_chans -> n_feats``; body = ENLCA, then ``n_resblocks``
ResBlocks (conv-ReLU-conv, ``x res_scale``, + input) with another ENLCA after every 8th; a final
3x3 conv; long skip; tail conv ``n_feats -> out_chans`` (key ``tl.1``; ``tl.0`` is the empty
scale-1 upsampler). ENLCA embeds with 1x1 convs, L2-normalises (eps 5e-5) and scales by
``sqrt(6)``, then runs Performer softmax-kernel linear attention (ratio ``nb_features ** -0.5``,
kernel eps 1e-4) with the *stored* random ``projection_matrix`` buffer.

The projection matrix is never redrawn inside ``forward``. The reference's trainer redraws it
every 640 training calls; :class:`ProjectionRedrawer` reproduces that outside the network.
The ENLCA contrastive loss (training-only in the reference) is available through
:func:`enlca_contrastive_loss`, not computed in ``forward``.

TorchScript-compatible; imports only torch.
"""

from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "KERNEL_EPS",
    "NORMALIZE_EPS",
    "MeanShiftC1",
    "ResBlock",
    "ENLA",
    "ENLCA",
    "ENLCN",
    "softmax_kernel",
    "linear_attention",
    "gaussian_orthogonal_random_matrix",
    "ProjectionRedrawer",
    "enlca_contrastive_loss",
]

KERNEL_EPS: float = 1e-4
"""Softmax-kernel epsilon of the reference ENLA."""
NORMALIZE_EPS: float = 5e-5
"""``F.normalize`` epsilon of the ENLCA embeddings."""


def _orthogonal_chunk(cols: int, device: Optional[torch.device] = None) -> Tensor:
    block = torch.randn((cols, cols), device=device)
    q, _ = torch.linalg.qr(block.cpu(), mode="reduced")
    return q.to(device).t()


def gaussian_orthogonal_random_matrix(
    nb_rows: int, nb_columns: int, device: Optional[torch.device] = None
) -> Tensor:
    """Performer random features: stacked orthogonal blocks scaled by Gaussian row norms."""
    blocks = [_orthogonal_chunk(nb_columns, device) for _ in range(nb_rows // nb_columns)]
    remaining = nb_rows - (nb_rows // nb_columns) * nb_columns
    if remaining > 0:
        blocks.append(_orthogonal_chunk(nb_columns, device)[:remaining])
    final = torch.cat(blocks)
    multiplier = torch.randn((nb_rows, nb_columns), device=device).norm(dim=1)
    return torch.diag(multiplier) @ final


def softmax_kernel(data: Tensor, projection_matrix: Tensor, eps: float = KERNEL_EPS) -> Tensor:
    """Positive random features ``ratio * (exp(data @ P^T - |data|^2 / 2) + eps)``.

    ``data``: ``(b, h, n, d)``; ``projection_matrix``: ``(m, d)``; returns ``(b, h, n, m)``.
    """
    ratio = projection_matrix.shape[0] ** -0.5
    data_dash = torch.matmul(data, projection_matrix.to(data.dtype).t())
    diag = (data**2).sum(dim=-1, keepdim=True) / 2.0
    return ratio * (torch.exp(data_dash - diag) + eps)


def linear_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Non-causal linear attention ``(q @ (k^T v)) / (q @ sum_n k)``."""
    k_sum = k.sum(dim=-2)  # b h m
    d_inv = 1.0 / torch.matmul(q, k_sum.unsqueeze(-1))  # b h n 1
    context = torch.matmul(k.transpose(-2, -1), v)  # b h m e
    return torch.matmul(q, context) * d_inv


class ENLA(nn.Module):
    """Efficient non-local attention (Performer softmax kernel) with a stored projection matrix."""

    def __init__(self, dim_heads: int, nb_features: int = 128, eps: float = KERNEL_EPS) -> None:
        super().__init__()
        self.dim_heads = dim_heads
        self.nb_features = nb_features
        self.eps = float(eps)
        self.register_buffer("projection_matrix", gaussian_orthogonal_random_matrix(nb_features, dim_heads))

    @torch.no_grad()
    def redraw_projection_matrix(self) -> None:
        """Draw a new random projection matrix in place (training only; never called by forward)."""
        device = self.projection_matrix.device
        new = gaussian_orthogonal_random_matrix(self.nb_features, self.dim_heads, device=device)
        self.projection_matrix.copy_(new)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        qp = softmax_kernel(q, self.projection_matrix, self.eps)
        kp = softmax_kernel(k, self.projection_matrix, self.eps)
        return linear_attention(qp, kp, v)


class ENLCA(nn.Module):
    """Efficient non-local contrastive attention block (output ``x res_scale`` + input)."""

    def __init__(self, channel: int = 256, reduction: int = 4, res_scale: float = 0.1, nb_features: int = 128) -> None:
        super().__init__()
        self.conv_match1 = nn.Sequential(nn.Conv2d(channel, channel // reduction, 1))
        self.conv_match2 = nn.Sequential(nn.Conv2d(channel, channel // reduction, 1))
        self.conv_assembly = nn.Sequential(nn.Conv2d(channel, channel, 1))
        self.res_scale = float(res_scale)
        self.attn_fn = ENLA(dim_heads=channel // reduction, nb_features=nb_features)
        self.k = math.sqrt(6)
        self.normalize_eps = NORMALIZE_EPS

    def embeddings(self, x: Tensor) -> List[Tensor]:
        """The two normalised match embeddings ``(N, C', H, W)`` (used by the contrastive loss)."""
        e1 = F.normalize(self.conv_match1(x), p=2.0, dim=1, eps=self.normalize_eps) * self.k
        e2 = F.normalize(self.conv_match2(x), p=2.0, dim=1, eps=self.normalize_eps) * self.k
        return [e1, e2]

    def forward(self, x: Tensor) -> Tensor:
        e = self.embeddings(x)
        assembly = self.conv_assembly(x)
        N, C, H, W = e[0].shape
        q = e[0].permute(0, 2, 3, 1).reshape(N, 1, H * W, C)
        k = e[1].permute(0, 2, 3, 1).reshape(N, 1, H * W, C)
        v = assembly.permute(0, 2, 3, 1).reshape(N, 1, H * W, -1)
        out = self.attn_fn(q, k, v).squeeze(1)  # N, HW, C
        return out.permute(0, 2, 1).reshape(N, -1, H, W) * self.res_scale + x


def enlca_contrastive_loss(block: ENLCA, x: Tensor) -> Tensor:
    """The reference's training-time ENLCA contrastive loss for input ``x`` (O((HW)^2) memory)."""
    e1, e2 = block.embeddings(x)
    N, C, H, W = e1.shape
    score = torch.exp(torch.matmul(e1.permute(0, 2, 3, 1).reshape(N, H * W, C), e2.reshape(N, C, H * W)))
    score = torch.sort(score, dim=2, descending=True)[0]
    positive = score[:, :, :15].mean(dim=2)
    negative = score[:, :, 50:65].mean(dim=2)
    return F.relu(-torch.log(positive / (negative + 1e-6)) + 1).mean()


class MeanShiftC1(nn.Conv2d):
    """Frozen 1x1 conv of the reference (``sub_mean`` / ``add_mean``); a state_dict key, unused in forward."""

    def __init__(self, rgb_range: float = 1.0, rgb_mean: float = 0.4299667, sign: int = -1) -> None:
        super().__init__(1, 1, kernel_size=1)
        with torch.no_grad():
            self.weight.fill_(1.0)
            self.bias.fill_(sign * rgb_range * rgb_mean)
        for p in self.parameters():
            p.requires_grad = False


class ResBlock(nn.Module):
    """EDSR residual block: ``x + res_scale * conv(relu(conv(x)))`` (keys ``body.0``, ``body.2``)."""

    def __init__(self, n_feats: int, kernel_size: int = 3, res_scale: float = 0.1) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv2d(n_feats, n_feats, kernel_size, padding=pad),
            nn.ReLU(True),
            nn.Conv2d(n_feats, n_feats, kernel_size, padding=pad),
        )
        self.res_scale = float(res_scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) * self.res_scale + x


class ENLCN(nn.Module):
    """The projection head (``project.*`` keys): ``in_chans`` z-slices -> ``out_chans`` image.

    Args:
        in_chans: input channels (projection: 50 z-slices).
        out_chans: output channels (1).
        n_feats: feature width (official 256).
        n_resblocks: ResBlocks (official 64); an ENLCA follows every 8th.
        res_scale: residual scale of ResBlocks and ENLCA (0.1).
        rgb_range: only used for the (unused) ``sub_mean``/``add_mean`` constants.
    """

    def __init__(
        self,
        in_chans: int = 50,
        out_chans: int = 1,
        n_feats: int = 256,
        n_resblocks: int = 64,
        res_scale: float = 0.1,
        rgb_range: float = 1.0,
    ) -> None:
        super().__init__()
        if n_feats % 4 != 0:
            raise ValueError(f"n_feats must be divisible by 4 (ENLCA reduction), got {n_feats}")
        self.in_chans = in_chans
        self.n_feats = n_feats
        self.n_resblocks = n_resblocks
        self.sub_mean = MeanShiftC1(rgb_range, sign=-1)
        self.add_mean = MeanShiftC1(rgb_range, sign=1)
        self.head = nn.Sequential(nn.Conv2d(in_chans, n_feats, 3, padding=1))
        body: List[nn.Module] = [ENLCA(n_feats, 4, res_scale)]
        for i in range(n_resblocks):
            body.append(ResBlock(n_feats, 3, res_scale))
            if (i + 1) % 8 == 0:
                body.append(ENLCA(n_feats, 4, res_scale))
        body.append(nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.body = nn.ModuleList(body)
        self.tl = nn.Sequential(nn.Sequential(), nn.Conv2d(n_feats, out_chans, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(x)
        res = x
        for blk in self.body:
            res = blk(res)
        return self.tl(res + x)


class ProjectionRedrawer:
    """Redraw every ENLA projection matrix of ``model`` every ``interval`` training calls.

    Mirrors the reference trainer's ``ProjectionUpdater(model, feature_redraw_interval=640)``:
    call :meth:`step` once before each training forward; it does nothing in eval mode.
    """

    def __init__(self, model: nn.Module, interval: Optional[int] = 640) -> None:
        self.model = model
        self.interval = interval
        self.calls = 0

    def step(self) -> bool:
        """Count one call; redraw (and return True) when the interval is reached."""
        if not self.model.training or self.interval is None:
            return False
        if self.calls >= self.interval:
            for m in self.model.modules():
                if isinstance(m, ENLA):
                    m.redraw_projection_matrix()
            self.calls = 0
            return True
        self.calls += 1
        return False
