import logging
import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hetmem.models.massl.module as module_file
from hetmem.evaluation import extract_features, weighted_knn_predict
from hetmem.models.massl.model import MaSSLConfig
from hetmem.models.massl.module import MaSSLModule, clip_grad_per_tensor_


@pytest.fixture(autouse=True)
def _quiet_lightning():
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*too low.*log_every_n_steps.*")
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # the teacher, on purpose
        yield


def tiny_config(**kw):
    base = dict(
        backbone="cnn", backbone_kwargs={"channels": (8, 8)}, image_shape=(1, 8, 8), hidden_dim=16, out_dim=8,
        memory_size=32, block_size=8, n_local=2, local_crop_size=4, warmup_epochs=1, teacher_temp_warmup_epochs=1,
    )
    return MaSSLConfig(**{**base, **kw})


def trainer(max_epochs, **kw):
    return pl.Trainer(
        max_epochs=max_epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, **kw,
    )


def image_loader(n=24, batch_size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    data = TensorDataset(torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g))
    return DataLoader(data, batch_size=batch_size)


def test_clip_grad_per_tensor_clips_each_tensor_on_its_own():
    big, small = nn.Parameter(torch.zeros(4)), nn.Parameter(torch.zeros(2))
    big.grad = torch.tensor([6.0, 0.0, 8.0, 0.0])  # norm 10
    small.grad = torch.tensor([0.3, 0.4])  # norm 0.5
    no_grad = nn.Parameter(torch.zeros(3))
    norms = clip_grad_per_tensor_([big, small, no_grad], 3.0)
    assert [round(float(n), 4) for n in norms] == [10.0, 0.5]
    assert big.grad.norm().item() == pytest.approx(3.0, rel=1e-5)
    assert torch.allclose(big.grad, torch.tensor([1.8, 0.0, 2.4, 0.0]), atol=1e-5)
    assert torch.equal(small.grad, torch.tensor([0.3, 0.4]))  # under the limit: untouched
    assert clip_grad_per_tensor_([no_grad], 1.0) == []


def test_weight_decay_only_on_matrices_and_kernels():
    module = MaSSLModule(tiny_config(), steps_per_epoch=3, max_epochs=2)
    opt = module.configure_optimizers()
    assert isinstance(opt, torch.optim.AdamW)
    decay, no_decay = opt.param_groups
    assert decay["apply_decay"] and all(p.ndim >= 2 for p in decay["params"]) and decay["weight_decay"] == pytest.approx(0.04)
    assert not no_decay["apply_decay"] and all(p.ndim < 2 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    student = list(module.model.student.parameters())
    assert len(decay["params"]) + len(no_decay["params"]) == len(student)
    assert not any(p is q for g in opt.param_groups for p in g["params"] for q in module.model.teacher.parameters())


def test_training_follows_the_schedules_updates_the_teacher_and_logs_monitors(monkeypatch):
    clips = []

    def counting_clip(params, max_norm):
        clips.append(max_norm)
        return clip_grad_per_tensor_(params, max_norm)

    monkeypatch.setattr(module_file, "clip_grad_per_tensor_", counting_clip)
    module = MaSSLModule(tiny_config(momentum_base=0.9), steps_per_epoch=3, max_epochs=2)
    momenta = []
    update = module.model.update_teacher_
    module.model.update_teacher_ = lambda m=None: momenta.append(m) or update(m)
    teacher0 = [p.clone() for p in module.model.teacher.parameters()]
    memory0 = module.model.memory.rows.clone()
    fit = trainer(2)
    fit.fit(module, image_loader())
    assert fit.global_step == 6
    expected = [module.schedule.at(step).momentum for step in range(6)]
    assert momenta == pytest.approx(expected) and momenta[0] == pytest.approx(0.9) and momenta[-1] == pytest.approx(1.0)
    assert clips == [3.0] * 6
    assert any(not torch.equal(a, b) for a, b in zip(teacher0, module.model.teacher.parameters()))
    assert not torch.equal(memory0[: 6 * 8], module.model.memory.rows[: 6 * 8])
    assert int(module.model.memory.ptr) == (6 * 8) % 32
    last = module.schedule.at(5)
    decay, no_decay = fit.optimizers[0].param_groups
    assert decay["lr"] == pytest.approx(last.lr) and decay["weight_decay"] == pytest.approx(last.weight_decay)
    assert no_decay["weight_decay"] == 0.0
    logged = fit.callback_metrics
    for name in ("loss", "student_std", "teacher_entropy", "student_entropy", "distinct_rows", "lr", "teacher_temp", "momentum"):
        assert f"train/{name}" in logged and torch.isfinite(logged[f"train/{name}"])


def test_gradient_accumulation_updates_the_teacher_once_per_optimiser_step():
    module = MaSSLModule(tiny_config(), steps_per_epoch=2, max_epochs=1)
    calls = []
    update = module.model.update_teacher_
    module.model.update_teacher_ = lambda m=None: calls.append(m) or update(m)
    fit = trainer(1, accumulate_grad_batches=2)
    fit.fit(module, image_loader(n=32))
    assert fit.global_step == 2 and len(calls) == 2


def test_checkpoint_restores_memory_and_teacher(tmp_path):
    module = MaSSLModule(tiny_config(), steps_per_epoch=3, max_epochs=1)
    fit = trainer(1)
    fit.fit(module, image_loader())
    path = tmp_path / "massl.ckpt"
    fit.save_checkpoint(path)
    restored = MaSSLModule.load_from_checkpoint(path)
    assert restored.config == module.config
    for name in ("rows", "ptr", "count"):
        assert torch.equal(getattr(restored.model.memory, name), getattr(module.model.memory, name))
    for a, b in zip(restored.model.teacher.parameters(), module.model.teacher.parameters()):
        assert torch.equal(a, b)


def digits_split():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8) in [0, 1]
    y = torch.tensor(digits.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return (x[perm[:1200]], y[perm[:1200]]), (x[perm[1200:]], y[perm[1200:]])


def knn(backbone, train, test):
    ftr, ytr = extract_features(backbone, [train])
    fte, yte = extract_features(backbone, [test])
    return (weighted_knn_predict(ftr, ytr, fte, num_classes=10) == yte).float().mean().item()


def pretrain_on_digits(seed: int, **overrides) -> tuple[float, float, float]:
    """k-NN accuracy of the random and the pretrained backbone, and the final student std."""
    train, test = digits_split()
    pl.seed_everything(seed, verbose=False)
    settings = dict(
        backbone="cnn", backbone_kwargs={"channels": (32, 64, 64)}, image_shape=(1, 8, 8), hidden_dim=256, out_dim=64,
        memory_size=1024, block_size=256, n_local=0, global_crop_scale=(0.5, 1.0), solarize_p=0.0,
        blur_sigma=(0.1, 0.6), teacher_temp_start=0.04, teacher_temp=0.04, momentum_base=0.99, lr=1e-3,
        warmup_epochs=3,
    )
    config = MaSSLConfig(**{**settings, **overrides})
    loader = DataLoader(TensorDataset(*train), batch_size=64, shuffle=True, drop_last=True)  # 18 steps per epoch
    module = MaSSLModule(config, steps_per_epoch=len(loader), max_epochs=16)
    before = knn(module.backbone, train, test)
    fit = trainer(16)
    fit.fit(module, loader)
    after = knn(module.backbone, train, test)
    return before, after, float(fit.callback_metrics["train/student_std"])


@pytest.mark.slow
def test_pretraining_on_digits_beats_the_random_backbone():
    """288 AdamW steps of MaSSL on scikit-learn's 8x8 digits improve weighted k-NN accuracy.

    At this scale local crops (a few pixels of an 8x8 digit) and solarization collapse the
    embeddings, and tau_t = 0.07 is too soft for embeddings that start in a narrow cone, so
    the run uses the two global views only and tau_t = 0.04 throughout. Measured gains over
    the random backbone (seeds 0, 1, 2) are reported with the module; the bar here is 2 points.
    """
    before, after, student_std = pretrain_on_digits(seed=0)
    assert after > before + 0.02, (before, after)
    assert student_std > 0.02  # not collapsed (1/sqrt(64) = 0.125 would be a uniform spread)
