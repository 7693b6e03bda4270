"""Multi-crop augmentation for small images, on a whole batch at once with torch ops.

MaSSL (like DINO) trains on two global crops and several small local crops of each image.
torchvision's per-image PIL transforms are replaced here by batched tensor ops: one
``F.affine_grid`` / ``F.grid_sample`` call crops, resizes (and optionally flips) every image
of the batch, and Gaussian blur is a grouped separable convolution with a per-image kernel.
Every random draw comes from one ``torch.Generator`` on the CPU, so the views are the same
on any device for the same generator state.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MultiCropAugmentation", "random_resized_crop", "gaussian_blur", "solarize", "brightness_contrast"]


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    """n draws from U[low, high), on the CPU."""
    return low + (high - low) * torch.rand(n, generator=generator)


def _bernoulli(n: int, p: float, generator: torch.Generator | None) -> Tensor:
    """n coin flips that come up True with probability p, on the CPU (always draws, so the
    generator advances the same way whatever p is)."""
    return torch.rand(n, generator=generator) < p


def _check_range(name: str, value: tuple[float, float], low: float, high: float) -> tuple[float, float]:
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        raise ValueError(f"MultiCropAugmentation: {name} must be (min, max) with {low} <= min <= max <= {high}, got {value}")
    return float(value[0]), float(value[1])


def _check_probability(name: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"MultiCropAugmentation: {name} must be a probability in [0, 1], got {p}")
    return float(p)


def random_resized_crop(
    x: Tensor,
    size: int,
    *,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flips: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Crops a random box from every image and resizes it to ``size x size`` (bilinear).

    The box covers a fraction of the image area drawn from U[scale] and has an aspect ratio
    drawn log-uniformly from ``ratio``; a side longer than the image is shortened to fit
    (torchvision retries, then falls back to a centre crop; the difference is small). With
    ``flips`` each crop is mirrored left-right with probability 1/2.

    Shapes:
        - x: (B, C, H, W); returns (B, C, size, size).

    Example:
        >>> random_resized_crop(torch.rand(3, 1, 28, 28), 12, scale=(0.05, 0.3)).shape
        torch.Size([3, 1, 12, 12])
    """
    B, C, H, W = x.shape
    area = _uniform(B, *scale, generator)  # (B,) fraction of the image area
    log_ratio = _uniform(B, math.log(ratio[0]), math.log(ratio[1]), generator)
    aspect = torch.exp(log_ratio) * H / W  # width/height of the box in fractions of the image sides
    w = torch.sqrt(area * aspect).clamp(max=1.0)  # (B,) box width as a fraction of W
    h = torch.sqrt(area / aspect).clamp(max=1.0)  # (B,) box height as a fraction of H
    cx = (2 * torch.rand(B, generator=generator) - 1) * (1 - w)  # (B,) box centre in [-1, 1] coords
    cy = (2 * torch.rand(B, generator=generator) - 1) * (1 - h)
    mirror = torch.where(_bernoulli(B, 0.5, generator), -1.0, 1.0) if flips else torch.ones(B)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = w * mirror
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    theta = theta.to(device=x.device, dtype=x.dtype)  # (B, 2, 3) output coords -> input coords
    grid = F.affine_grid(theta, [B, C, size, size], align_corners=False)  # (B, size, size, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def gaussian_blur(x: Tensor, sigma: Tensor) -> Tensor:
    """Blurs image b with an isotropic Gaussian of standard deviation ``sigma[b]`` pixels.

    One separable grouped convolution for the whole batch; the kernel radius is
    ``ceil(3 * max(sigma))``, capped so that reflection padding fits the image.

    Shapes:
        - x: (B, C, H, W); sigma: (B,) positive; returns (B, C, H, W).

    Example:
        >>> x = torch.zeros(2, 1, 9, 9); x[:, :, 4, 4] = 1.0
        >>> y = gaussian_blur(x, torch.tensor([0.5, 1.5]))
        >>> round(float(y[0].sum()), 4), bool(y[1, 0, 4, 4] < y[0, 0, 4, 4])
        (1.0, True)
    """
    B, C, H, W = x.shape
    if B == 0:
        return x
    radius = min(math.ceil(3 * float(sigma.max())), (min(H, W) - 1) // 2)
    if radius < 1:
        return x
    sigma = sigma.to(device=x.device, dtype=x.dtype)
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)  # (k,)
    kernel = torch.exp(-0.5 * (t / sigma[:, None]) ** 2)  # (B, k)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(C, dim=0)  # (B*C, k)
    y = x.reshape(1, B * C, H, W)  # every (image, channel) pair is its own conv group
    y = F.pad(y, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, kernel[:, None, None, :], groups=B * C)  # (1, B*C, H + 2r, W) horizontal pass
    y = F.conv2d(y, kernel[:, None, :, None], groups=B * C)  # (1, B*C, H, W) vertical pass
    return y.reshape(B, C, H, W)


def solarize(x: Tensor, threshold: float = 0.5) -> Tensor:
    """Inverts every pixel at or above ``threshold`` (images in [0, 1]): ``x -> 1 - x``.

    Example:
        >>> solarize(torch.tensor([0.25, 0.5, 0.75])).tolist()
        [0.25, 0.5, 0.25]
    """
    return torch.where(x >= threshold, 1.0 - x, x)


def brightness_contrast(x: Tensor, brightness: Tensor, contrast: Tensor) -> Tensor:
    """Scales each image's brightness by ``brightness[b]`` and its contrast around its mean by
    ``contrast[b]``, then clips to [0, 1] (torchvision's ColorJitter without hue/saturation).

    Shapes:
        - x: (B, C, H, W); brightness, contrast: (B,); returns (B, C, H, W).
    """
    shape = (-1,) + (1,) * (x.dim() - 1)
    x = (x * brightness.to(x).view(shape)).clamp(0.0, 1.0)
    mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)  # (B, 1, 1, 1) grey level
    return ((x - mean) * contrast.to(x).view(shape) + mean).clamp(0.0, 1.0)


class MultiCropAugmentation:
    """Two global crops and ``n_local`` local crops of every image in a batch.

    The views, in order (DINO's and MaSSL's recipe, without hue/saturation jitter, which
    means nothing on grey digits, and with left-right flips off by default, since a
    mirrored digit is another symbol):

    1. global view 1: random resized crop (``global_scale``) at ``global_size``, brightness
       and contrast jitter (probability ``jitter_p``), Gaussian blur **always**;
    2. global view 2: the same crop and jitter, blur with probability ``global2_blur_p``
       (0.1) and solarization with probability ``solarize_p`` (0.2): the asymmetry between
       the two teacher views is kept on purpose;
    3. local views: random resized crops (``local_scale``) at ``local_size``, jitter, and
       a light blur with probability ``local_blur_p`` (0.5).

    Images are expected in [0, 1] and views stay in [0, 1] (bilinear resampling, convex
    blur kernels, clipped jitter, solarization all preserve the range). Blur standard
    deviations are in pixels of the view, drawn from U[``blur_sigma``]; the reference's
    0.1-2.0 px is for 224 px crops, (0.1, 1.0) suits 8-32 px digits.

    Args:
        n_local: number of local crops (0 for two global views only).
        global_size: side of the global views; None keeps the input's height.
        local_size: side of the local views (12-14 px for 28 px digits).
        global_scale: range of the area fraction of global crops.
        local_scale: range of the area fraction of local crops.
        ratio: range of the crops' aspect ratio (width / height), drawn log-uniformly.
        blur_sigma: range of the Gaussian blur's standard deviation in pixels.
        global2_blur_p: probability of blurring global view 2.
        solarize_p: probability of solarizing global view 2.
        local_blur_p: probability of blurring a local view.
        jitter_p: probability of brightness/contrast jitter on any view.
        brightness: jitter factor range is [1 - brightness, 1 + brightness].
        contrast: jitter factor range is [1 - contrast, 1 + contrast].
        flips: mirror crops left-right with probability 1/2 (off for digits).

    Shapes:
        - input: (B, C, H, W) floats in [0, 1].
        - output: a list of 2 + n_local tensors: two (B, C, G, G), then n_local (B, C, L, L).

    Example:
        >>> aug = MultiCropAugmentation(n_local=3, local_size=12)
        >>> views = aug(torch.rand(5, 1, 28, 28), generator=torch.Generator().manual_seed(0))
        >>> [tuple(v.shape) for v in views]
        [(5, 1, 28, 28), (5, 1, 28, 28), (5, 1, 12, 12), (5, 1, 12, 12), (5, 1, 12, 12)]
    """

    def __init__(
        self,
        *,
        n_local: int = 2,
        global_size: int | None = None,
        local_size: int = 12,
        global_scale: tuple[float, float] = (0.3, 1.0),
        local_scale: tuple[float, float] = (0.05, 0.3),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        blur_sigma: tuple[float, float] = (0.1, 1.0),
        global2_blur_p: float = 0.1,
        solarize_p: float = 0.2,
        local_blur_p: float = 0.5,
        jitter_p: float = 0.8,
        brightness: float = 0.4,
        contrast: float = 0.4,
        flips: bool = False,
    ) -> None:
        if not isinstance(n_local, int) or n_local < 0:
            raise ValueError(f"MultiCropAugmentation: n_local must be an int >= 0, got {n_local!r}")
        for name, size in (("global_size", global_size), ("local_size", local_size)):
            if size is not None and (not isinstance(size, int) or size < 1):
                raise ValueError(f"MultiCropAugmentation: {name} must be a positive int, got {size!r}")
        self.n_local = n_local
        self.global_size = global_size
        self.local_size = local_size
        self.global_scale = _check_range("global_scale", global_scale, 1e-6, 1.0)
        self.local_scale = _check_range("local_scale", local_scale, 1e-6, 1.0)
        self.ratio = _check_range("ratio", ratio, 1e-6, math.inf)
        self.blur_sigma = _check_range("blur_sigma", blur_sigma, 1e-6, math.inf)
        self.global2_blur_p = _check_probability("global2_blur_p", global2_blur_p)
        self.solarize_p = _check_probability("solarize_p", solarize_p)
        self.local_blur_p = _check_probability("local_blur_p", local_blur_p)
        self.jitter_p = _check_probability("jitter_p", jitter_p)
        for name, value in (("brightness", brightness), ("contrast", contrast)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"MultiCropAugmentation: {name} must be in [0, 1), got {value}")
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.flips = bool(flips)

    @property
    def num_views(self) -> int:
        return 2 + self.n_local

    def _view(
        self,
        x: Tensor,
        size: int,
        scale: tuple[float, float],
        blur_p: float,
        solarize_p: float,
        generator: torch.Generator | None,
    ) -> Tensor:
        B = x.shape[0]
        v = random_resized_crop(x, size, scale=scale, ratio=self.ratio, flips=self.flips, generator=generator)
        # v: (B, C, size, size)
        jitter = _bernoulli(B, self.jitter_p, generator).to(x.device)
        b = _uniform(B, 1 - self.brightness, 1 + self.brightness, generator)
        c = _uniform(B, 1 - self.contrast, 1 + self.contrast, generator)
        v = torch.where(jitter.view(-1, 1, 1, 1), brightness_contrast(v, b, c), v)
        blur = _bernoulli(B, blur_p, generator).to(x.device)
        sigma = _uniform(B, *self.blur_sigma, generator)
        if bool(blur.any()):
            idx = blur.nonzero().squeeze(1)  # blur only the images that drew it
            v = v.index_copy(0, idx, gaussian_blur(v[idx], sigma.to(x.device)[idx]))
        flip = _bernoulli(B, solarize_p, generator).to(x.device)
        return torch.where(flip.view(-1, 1, 1, 1), solarize(v), v)

    def __call__(self, x: Tensor, *, generator: torch.Generator | None = None) -> list[Tensor]:
        """Returns ``[global_1, global_2, local_1, ..., local_n]`` for the batch ``x``."""
        if x.dim() != 4 or not x.is_floating_point():
            raise ValueError(f"MultiCropAugmentation: expected float images (B, C, H, W), got {x.dtype} {tuple(x.shape)}")
        size = self.global_size or x.shape[-2]
        views = [
            self._view(x, size, self.global_scale, 1.0, 0.0, generator),
            self._view(x, size, self.global_scale, self.global2_blur_p, self.solarize_p, generator),
        ]
        views += [
            self._view(x, self.local_size, self.local_scale, self.local_blur_p, 0.0, generator)
            for _ in range(self.n_local)
        ]
        return views

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_local={self.n_local}, global_size={self.global_size}, "
            f"local_size={self.local_size}, global_scale={self.global_scale}, local_scale={self.local_scale}, "
            f"flips={self.flips})"
        )
