"""t-SNE and attention figures from a freshly trained (1-epoch) HMA model on digits."""

import pytest

from hetmem.experiments.figures import attention_figure, tsne_figure
from hetmem.train.config import resolve_config
from hetmem.train.runner import load_trained, train


@pytest.mark.slow
def test_tsne_and_attention_figures(tmp_path):
    cfg = resolve_config({"task": "digits", "epochs": 1, "progress": False, "hma": {"slots_per_class": 4}})
    train(cfg, tmp_path / "run")
    model, _, task, _ = load_trained(tmp_path / "run")
    for fig in (tsne_figure(model, task, tmp_path / "tsne.png", per_class=10), attention_figure(model, task, tmp_path / "att.png")):
        assert fig.stat().st_size > 10000
    assert model.head.config.eval_context == "batch"  # restored after the figure
