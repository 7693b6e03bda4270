"""Rich features (thesis ch. 2): Cat_n and two-stage fine-tuning, Distill_n, Cat_n-s snapshots;
Bonsai / RFC (discovery rounds, synthesis, downstream init or frozen) on member-vectorised IRM MLPs.

Shapes: B rows, n member networks, C classes, D = sum of the members' feature widths. The
objectives Bonsai is evaluated with live next to the training loop
(:mod:`hetmem.train.env_objectives`, :mod:`hetmem.train.fullbatch`).
"""

from hetmem.models.rich.bonsai import Bonsai, BonsaiConfig, discover_and_synthesize
from hetmem.models.rich.cat import HEAD_RECIPE, CatBackbone, TwoStageResult, catsub, concat_heads, two_stage_finetune
from hetmem.models.rich.classifier import FeatureClassifier, freeze_norm_
from hetmem.models.rich.distillation import DistillNet, distill, distill_loss, teacher_logits
from hetmem.models.rich.fit import Recipe, accuracy, epochs_to_steps, fit_steps, predict_logits
from hetmem.models.rich.members import MemberHead, MemberMLP
from hetmem.models.rich.snapshots import train_snapshots

__all__ = [
    "Bonsai",
    "BonsaiConfig",
    "HEAD_RECIPE",
    "CatBackbone",
    "DistillNet",
    "FeatureClassifier",
    "MemberHead",
    "MemberMLP",
    "Recipe",
    "TwoStageResult",
    "accuracy",
    "catsub",
    "concat_heads",
    "discover_and_synthesize",
    "distill",
    "distill_loss",
    "epochs_to_steps",
    "fit_steps",
    "freeze_norm_",
    "predict_logits",
    "teacher_logits",
    "train_snapshots",
    "two_stage_finetune",
]
