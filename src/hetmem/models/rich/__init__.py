"""Rich features (thesis ch. 2): Cat_n and two-stage fine-tuning, Distill_n, Cat_n-s snapshots.

Shapes: B rows, n member networks, C classes, D = sum of the members' feature widths.
"""

from hetmem.models.rich.cat import HEAD_RECIPE, CatBackbone, TwoStageResult, catsub, concat_heads, two_stage_finetune
from hetmem.models.rich.classifier import FeatureClassifier, freeze_norm_
from hetmem.models.rich.distillation import DistillNet, distill, distill_loss, teacher_logits
from hetmem.models.rich.fit import Recipe, accuracy, epochs_to_steps, fit_steps, predict_logits
from hetmem.models.rich.snapshots import train_snapshots

__all__ = [
    "HEAD_RECIPE",
    "CatBackbone",
    "DistillNet",
    "FeatureClassifier",
    "Recipe",
    "TwoStageResult",
    "accuracy",
    "catsub",
    "concat_heads",
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
