"""Evaluation of frozen features: weighted k-NN and a linear probe (shared by the SSL methods)."""

from hetmem.evaluation.frozen import score_backbone
from hetmem.evaluation.knn import extract_features, knn_accuracy, weighted_knn_predict, weighted_knn_scores
from hetmem.evaluation.linear_probe import LinearProbe, fit_linear_probe, linear_probe_accuracy

__all__ = [
    "LinearProbe",
    "extract_features",
    "fit_linear_probe",
    "knn_accuracy",
    "linear_probe_accuracy",
    "score_backbone",
    "weighted_knn_predict",
    "weighted_knn_scores",
]
