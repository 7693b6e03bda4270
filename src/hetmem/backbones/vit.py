"""A small Vision Transformer (Dosovitskiy et al. 2021), pre-LN, read out at the CLS token."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.backbones._checks import check_dropout, check_positive_int
from hetmem.backbones.registry import register_backbone
from hetmem.backbones.spec import InputSpec

__all__ = ["Attention", "FeedForward", "Block", "VisionTransformer", "default_patch_size", "vit"]

MIN_PATCHES, MAX_PATCHES = 16, 64  # the patch-count range default_patch_size aims for


def default_patch_size(height: int, width: int) -> int:
    """The patch size ``patch_size=None`` picks for a height x width image.

    Among the common divisors p of height and width: the smallest p >= 2 that gives 16 to 64
    patches; p = 1 only if no larger patch does; and if no divisor gives 16 to 64 patches, the
    one whose patch count is nearest that range.

    Example:
        >>> [default_patch_size(s, s) for s in (32, 28, 14, 8)]  # 64, 49, 49, 16 patches
        [4, 4, 2, 2]
        >>> default_patch_size(7, 7)  # only 1x1 patches give 16-64 tokens
        1
    """

    def distance(p: int) -> int:  # how far p's patch count is outside [MIN_PATCHES, MAX_PATCHES]
        n = (height // p) * (width // p)
        return max(MIN_PATCHES - n, n - MAX_PATCHES, 0)

    divisors = [p for p in range(1, math.gcd(height, width) + 1) if height % p == 0 and width % p == 0]
    return min(divisors, key=lambda p: (distance(p), p == 1, p))


class Attention(nn.Module):
    """Multi-head self-attention, fused (``F.scaled_dot_product_attention``) or written out.

    Args:
        dim: token width; a multiple of ``num_heads``.
        num_heads: attention heads; ``head_dim = dim // num_heads``.
        dropout: dropout on the attention weights and on the output projection.
        fused: use the fused kernel; False computes the same attention with explicit weights.

    Shapes:
        - input and output: (B, N, dim).
    """

    def __init__(self, dim: int, *, num_heads: int = 4, dropout: float = 0.0, fused: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"Attention: dim ({dim}) must be a multiple of num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.fused = fused
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim)  # (B, N, 3, nh, hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, nh, N, hd)
        if self.fused:
            dropout_p = self.attn_drop.p if self.training else 0.0
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)  # (B, nh, N, hd)
        else:
            attn = (q @ k.transpose(-2, -1)) * self.head_dim**-0.5  # (B, nh, N, N)
            attn = self.attn_drop(attn.softmax(dim=-1))
            x = attn @ v  # (B, nh, N, hd)
        x = x.transpose(1, 2).reshape(B, N, C)  # (B, N, nh * hd)
        return self.proj_drop(self.proj(x))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, head_dim={self.head_dim}, fused={self.fused}"


class FeedForward(nn.Module):
    """Linear, GELU, Linear, with dropout after each; ``hidden_dim`` wide inside."""

    def __init__(self, dim: int, hidden_dim: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dropout(F.gelu(self.fc1(x)))  # (B, N, hidden_dim)
        return self.dropout(self.fc2(x))  # (B, N, dim)


class Block(nn.Module):
    """A pre-LN transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, dim: int, *, num_heads: int = 4, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout=dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))  # (B, N, dim)
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """Patch embedding, a CLS token, learned positions, pre-LN blocks; features at the CLS token.

    The image is cut into non-overlapping ``patch_size`` x ``patch_size`` patches by a strided
    Conv2d, a learnable CLS token is prepended, a learnable position embedding is added, and
    ``depth`` pre-LN blocks and a final LayerNorm follow. ``forward_features`` returns the CLS
    token's output. Initialised like DeiT: truncated normal (std 0.02) for the linear layers,
    the CLS token and the positions.

    Args:
        in_channels: channels of the input image.
        image_size: (height, width) of the input; fixed, since the positions are learned.
        patch_size: side of a square patch; it must divide height and width. None picks
            ``default_patch_size(height, width)`` (32 -> 4, 28 -> 4, 14 -> 2, 8 -> 2).
        dim: token width; also ``feature_dim``.
        depth: number of transformer blocks.
        num_heads: attention heads; must divide ``dim``.
        mlp_ratio: width of the blocks' MLP relative to ``dim``.
        dropout: dropout on the embeddings, attention weights and block outputs.

    Shapes:
        - input: (B, in_channels, height, width).
        - output: (B, dim), the CLS token after the final LayerNorm.

    Example:
        >>> net = VisionTransformer(1, (28, 28), dim=32, depth=1)
        >>> net.patch_size, net.num_patches
        (4, 49)
        >>> net(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 32])
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        *,
        patch_size: int | None = None,
        dim: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        height, width = image_size
        for name, value in (("in_channels", in_channels), ("height", height), ("width", width)):
            check_positive_int("VisionTransformer", name, value)
        if patch_size is None:
            patch_size = default_patch_size(height, width)
        for name, value in (("patch_size", patch_size), ("dim", dim), ("depth", depth), ("num_heads", num_heads)):
            check_positive_int("VisionTransformer", name, value)
        if height % patch_size or width % patch_size:
            raise ValueError(
                f"VisionTransformer: patch_size must divide the image height and width, got patch_size={patch_size} "
                f"for {height}x{width} images; default_patch_size gives {default_patch_size(height, width)}"
            )
        if dim % num_heads:
            raise ValueError(f"VisionTransformer: num_heads must divide dim, got dim={dim}, num_heads={num_heads}")
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or int(dim * mlp_ratio) < 1:
            raise ValueError(f"VisionTransformer: mlp_ratio must be a positive number, got {mlp_ratio!r}")
        check_dropout("VisionTransformer", "dropout", dropout)
        self.image_size = (height, width)
        self.patch_size = patch_size
        self.num_patches = (height // patch_size) * (width // patch_size)
        self.feature_dim = dim
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.empty(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.empty(1, 1 + self.num_patches, dim))
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(
            *(Block(dim, num_heads=num_heads, mlp_ratio=mlp_ratio, dropout=dropout) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.patch_embed.reset_parameters()
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()

    def forward_features(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        if (H, W) != self.image_size:
            raise ValueError(f"VisionTransformer: built for {self.image_size} images, got input of shape {tuple(x.shape)}")
        x = self.patch_embed(x)  # (B, dim, H / p, W / p)
        x = x.flatten(2).transpose(1, 2)  # (B, N, dim), patches in row-major order
        cls = self.cls_token.expand(B, -1, -1)  # (B, 1, dim)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, 1 + N, dim)
        x = self.blocks(self.pos_drop(x))  # (B, 1 + N, dim)
        return self.norm(x)[:, 0]  # (B, dim)

    forward = forward_features

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, patch_size={self.patch_size}, num_patches={self.num_patches}"


@register_backbone("vit", kinds=("image",))
def vit(
    spec: InputSpec,
    *,
    patch_size: int | None = None,
    dim: int = 128,
    depth: int = 4,
    num_heads: int = 4,
    mlp_ratio: float = 4.0,
    dropout: float = 0.0,
) -> VisionTransformer:
    """A small pre-LN Vision Transformer (dim 128, depth 4, 4 heads) read out at the CLS token."""
    channels, height, width = spec.shape
    return VisionTransformer(
        channels,
        (height, width),
        patch_size=patch_size,
        dim=dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        dropout=dropout,
    )
