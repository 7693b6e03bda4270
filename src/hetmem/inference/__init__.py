"""Inference: load a trained model, predict from arrays or files, write the predictions."""

from hetmem.inference.files import read_inputs, write_predictions
from hetmem.inference.trained import Predictions, TrainedModel, load_trained

__all__ = ["Predictions", "TrainedModel", "load_trained", "read_inputs", "write_predictions"]
