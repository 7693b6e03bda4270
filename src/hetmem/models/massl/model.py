"""MaSSL: a student, its EMA teacher and a memory of teacher embeddings (arXiv 2407.17486)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.backbones import InputSpec, create_backbone
from hetmem.distributed import concat_all_gather
from hetmem.models.massl.blocks import check_block_sampling, sample_memory_blocks
from hetmem.models.massl.head import ProjectionHead
from hetmem.models.massl.loss import massl_loss
from hetmem.memory import FeatureQueue, MomentumEncoder

__all__ = ["MaSSL", "MaSSLConfig", "MultiCropNetwork"]


@dataclass
class MaSSLConfig:
    """Hyper-parameters of MaSSL. Paper values in comments; defaults are sized for a CPU
    (DESIGN.md, 'CPU scale') where the paper's would not fit."""

    # --- networks
    backbone: str = "cnn"  # registry name of the backbone (hetmem.backbones.create_backbone)
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)  # extra arguments of the backbone factory
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of the training images, for the backbone
    hidden_dim: int = 2048  # projection head hidden width (paper 2048; 256-512 is enough on a CPU)
    out_dim: int = 256  # D: embedding and memory-row width (paper 256)
    head_layers: int = 3  # Linear layers in the projection head (paper 3)
    # --- memory
    memory_size: int = 4096  # K: memory rows (paper 65,536)
    block_size: int = 1024  # Nb: rows per memory block; must divide K (paper 16,384: K / Nb = 4)
    block_sampling: str = "random"  # random (MaSSL) | contiguous (blockwise ablation) | none (one block of K)
    # --- loss temperatures
    student_temp: float = 0.1  # tau_s (paper 0.1)
    teacher_temp_start: float = 0.04  # tau_t at step 0 (paper 0.04)
    teacher_temp: float = 0.07  # tau_t after its warm-up (paper 0.07)
    teacher_temp_warmup_epochs: float = 30  # epochs of linear tau_t warm-up (reference code 30)
    # --- teacher
    momentum_base: float = 0.996  # EMA momentum at step 0, rising on a cosine to 1 (paper 0.992-0.996)
    # --- views
    n_local: int = 2  # local crops per image (reference 6-10 at 96 px; 2-4 for 28 px digits, 0 for 8 px)
    global_crop_size: int | None = None  # side of the 2 global views; None: the image height
    local_crop_size: int = 12  # side of the local views (12-14 px for 28 px digits; reference 96 of 224)
    global_crop_scale: tuple[float, float] = (0.3, 1.0)  # area fraction of global crops
    local_crop_scale: tuple[float, float] = (0.05, 0.3)  # area fraction of local crops
    blur_sigma: tuple[float, float] = (0.1, 1.0)  # Gaussian blur std in view pixels (reference 0.1-2 at 224 px)
    solarize_p: float = 0.2  # probability of solarizing global view 2 (reference 0.2)
    jitter_p: float = 0.8  # probability of brightness/contrast jitter (reference 0.8, with hue: none here)
    flips: bool = False  # random left-right flips (off for digits)
    # --- optimisation (AdamW)
    lr: float = 5e-4  # peak learning rate after warm-up (the reference scales 5e-4 by batch / 256)
    min_lr: float = 1e-6  # learning rate at the last step
    warmup_epochs: float = 10  # epochs of linear learning-rate warm-up (reference 10)
    weight_decay: float = 0.04  # weight decay at step 0, matrices only (paper 0.04)
    weight_decay_end: float = 0.4  # weight decay at the last step, cosine in between (paper 0.4)
    clip_grad: float = 3.0  # per-tensor gradient-norm clip; 0 disables (paper 3.0)

    def __post_init__(self) -> None:
        self.image_shape = tuple(self.image_shape)
        self.global_crop_scale = tuple(self.global_crop_scale)
        self.local_crop_scale = tuple(self.local_crop_scale)
        self.blur_sigma = tuple(self.blur_sigma)
        if len(self.image_shape) != 3 or any(not isinstance(s, int) or s < 1 for s in self.image_shape):
            raise ValueError(f"MaSSLConfig: image_shape must be (C, H, W) of positive ints, got {self.image_shape}")
        for name in ("hidden_dim", "out_dim", "head_layers", "memory_size", "local_crop_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"MaSSLConfig: {name} must be a positive int, got {value!r}")
        if not isinstance(self.n_local, int) or self.n_local < 0:
            raise ValueError(f"MaSSLConfig: n_local must be an int >= 0, got {self.n_local!r}")
        check_block_sampling(self.memory_size, self.block_size, self.block_sampling, owner="MaSSLConfig")
        for name in ("student_temp", "teacher_temp_start", "teacher_temp"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MaSSLConfig: {name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.momentum_base <= 1.0:
            raise ValueError(f"MaSSLConfig: momentum_base must be in [0, 1], got {self.momentum_base}")
        non_negative = ("lr", "min_lr", "warmup_epochs", "teacher_temp_warmup_epochs")
        for name in non_negative + ("weight_decay", "weight_decay_end", "clip_grad"):
            if getattr(self, name) < 0:
                raise ValueError(f"MaSSLConfig: {name} must be >= 0, got {getattr(self, name)}")

    @property
    def num_views(self) -> int:
        return 2 + self.n_local


class MultiCropNetwork(nn.Module):
    """Backbone + projection head applied to a list of views of different resolutions.

    Views of equal shape that follow each other are concatenated and run through the
    backbone together (DINO's multi-crop wrapper): one call for the global views, one for
    the local views.

    Shapes:
        - views: a sequence of V tensors (B, C, H_v, W_v); returns (V, B, out_dim), unit rows.

    Example:
        >>> from hetmem.backbones.cnn import ConvNet
        >>> net = MultiCropNetwork(ConvNet(1, channels=(8, 8)), ProjectionHead(8, hidden_dim=16, out_dim=4))
        >>> net([torch.rand(3, 1, 8, 8)] * 2 + [torch.rand(3, 1, 4, 4)]).shape
        torch.Size([3, 3, 4])
    """

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, views: Sequence[Tensor]) -> Tensor:
        V, B = len(views), views[0].shape[0]
        features, start = [], 0
        while start < V:
            stop = start + 1
            while stop < V and views[stop].shape == views[start].shape:
                stop += 1
            x = torch.cat(list(views[start:stop]), dim=0)  # ((stop - start) * B, C, H, W)
            features.append(self.backbone.forward_features(x))  # ((stop - start) * B, feature_dim)
            start = stop
        return self.head(torch.cat(features, dim=0)).view(V, B, -1)  # (V, B, out_dim)


class MaSSL(nn.Module):
    """Memory-augmented self-supervised learning (Silva, Pedrini, Ramírez Rivera 2024).

    A training step (``forward`` in training mode):

    1. reads a snapshot of the memory (K unit rows) *before* anything is written;
    2. cuts the K rows into blocks (``sample_memory_blocks``), shared by all views;
    3. embeds all views with the student and the two global views with the teacher;
    4. computes ``massl_loss`` against the snapshot;
    5. writes the teacher's embeddings of global view 2 to the memory (gathered from every
       process first, so all ranks keep the same memory). The current batch is therefore
       never in the memory it is scored against.

    After each optimiser step call ``update_teacher_(momentum)``: the teacher follows the
    student by EMA and receives no gradient. The memory starts full of random unit vectors
    and is a persistent buffer: it is saved and restored with the state dict.

    Args:
        config: MaSSL hyper-parameters.
        backbone: a module with ``forward_features(x) -> (B, feature_dim)`` and an int
            ``feature_dim``; None builds ``config.backbone`` from the registry.

    Shapes:
        - views: V = 2 + n_local tensors (B, C, H_v, W_v), the 2 global views first.
        - returns a scalar loss and a dict of scalar tensors (detached): ``loss``,
          ``teacher_entropy``, ``student_entropy``, ``distinct_rows``, ``student_std``.

    Example:
        >>> config = MaSSLConfig(backbone="cnn", backbone_kwargs={"channels": (8, 8)}, image_shape=(1, 8, 8),
        ...                      hidden_dim=16, out_dim=8, memory_size=32, block_size=8)
        >>> model = MaSSL(config)
        >>> views = [torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8), torch.rand(4, 1, 4, 4)]
        >>> loss, stats = model(views)
        >>> loss.backward(); model.update_teacher_(0.99)
        >>> int(model.memory.ptr), sorted(stats)
        (4, ['distinct_rows', 'loss', 'student_entropy', 'student_std', 'teacher_entropy'])
    """

    def __init__(self, config: MaSSLConfig, backbone: nn.Module | None = None) -> None:
        super().__init__()
        if backbone is None:
            spec = InputSpec.image(*config.image_shape)
            backbone = create_backbone(config.backbone, spec, **config.backbone_kwargs)
        feature_dim = getattr(backbone, "feature_dim", None)
        if not callable(getattr(backbone, "forward_features", None)) or not isinstance(feature_dim, int):
            raise ValueError(
                "MaSSL: backbone must have a forward_features(x) -> (B, D) method and an int feature_dim "
                f"attribute; {type(backbone).__name__} has not"
            )
        self.config = config
        head = ProjectionHead(feature_dim, hidden_dim=config.hidden_dim, out_dim=config.out_dim, num_layers=config.head_layers)
        self.student = MultiCropNetwork(backbone, head)
        self.teacher = MomentumEncoder(self.student, momentum=config.momentum_base)
        self.memory = FeatureQueue(config.out_dim, config.memory_size)
        self.reset_memory()

    @property
    def backbone(self) -> nn.Module:
        """The student's backbone: the network to evaluate and transfer."""
        return self.student.backbone

    @torch.no_grad()
    def reset_memory(self, generator: torch.Generator | None = None) -> None:
        """Fills the whole memory with random unit vectors (pointer back at row 0)."""
        rows = torch.randn(self.config.memory_size, self.config.out_dim, generator=generator)  # (K, D)
        self.memory.reset()
        self.memory.write_(F.normalize(rows, dim=1).to(self.memory.rows.device))

    @torch.no_grad()
    def update_teacher_(self, momentum: float | None = None) -> None:
        """EMA step of the teacher towards the student; call it after each optimiser step."""
        self.teacher.update_(self.student, momentum=momentum)

    def forward(
        self,
        views: Sequence[Tensor],
        *,
        teacher_temp: float | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of one step; in training mode, writes this step's teacher rows afterwards.

        Args:
            views: the 2 global views, then the local views.
            teacher_temp: tau_t of this step; None uses ``config.teacher_temp``.
            generator: CPU generator for the memory blocks (the global one if None).
        """
        cfg = self.config
        if len(views) < 2:
            raise ValueError(f"MaSSL: need at least the 2 global views, got {len(views)}")
        B = views[0].shape[0]
        if any(v.shape[0] != B for v in views) or views[0].shape != views[1].shape:
            shapes = [tuple(v.shape) for v in views]
            raise ValueError(f"MaSSL: views must share the batch size and the 2 global views their shape, got {shapes}")
        memory, _ = self.memory.read()  # (K, D) detached snapshot, taken before this step's write
        blocks = sample_memory_blocks(  # (N, Nb) row indices, shared by every view and sample
            cfg.memory_size, cfg.block_size, cfg.block_sampling, generator=generator, device=memory.device
        )
        student = self.student(views)  # (V, B, D)
        teacher = self.teacher(views[:2])  # (2, B, D), no gradient
        tau_t = cfg.teacher_temp if teacher_temp is None else teacher_temp
        loss, stats = massl_loss(student, teacher, memory, blocks, student_temp=cfg.student_temp, teacher_temp=tau_t)
        if self.training:
            self.memory.write_(concat_all_gather(teacher[1].contiguous()))  # (world * B, D)
        with torch.no_grad():
            student_std = student[:2].std(dim=1, correction=0).mean()  # per-dimension batch std of the global embeddings
        out = {"loss": loss.detach(), "student_std": student_std, **stats._asdict()}
        return loss, out

    def extra_repr(self) -> str:
        cfg = self.config
        return f"memory_size={cfg.memory_size}, block_size={cfg.block_size}, block_sampling={cfg.block_sampling!r}"
