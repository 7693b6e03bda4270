"""Inference: load a trained model, predict from arrays or files, write the predictions; a
compiled evaluation head."""

from hetmem.inference.compiled import CompiledHead
from hetmem.inference.files import read_inputs, write_predictions
from hetmem.inference.trained import Predictions, TrainedModel, load_trained

__all__ = ["CompiledHead", "Predictions", "TrainedModel", "load_trained", "read_inputs", "write_predictions"]
