import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hetmem.models.massl.model as model_module
from hetmem.models.massl.model import MaSSL, MaSSLConfig, MultiCropNetwork

K, D, B = 32, 8, 4


class TinyConv(nn.Module):
    """A backbone with the hetmem interface that takes any image size (global pooling)."""

    feature_dim = 12

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 12, 3, padding=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x)).mean(dim=(2, 3))


def config(**kw):
    base = dict(image_shape=(1, 8, 8), hidden_dim=16, out_dim=D, memory_size=K, block_size=8, n_local=2, local_crop_size=4)
    return MaSSLConfig(**{**base, **kw})


def make(**kw):
    return MaSSL(config(**kw), TinyConv())


def views(seed=0, n_local=2):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(B, 1, 8, 8, generator=g) for _ in range(2)] + [torch.rand(B, 1, 4, 4, generator=g) for _ in range(n_local)]


def test_memory_starts_full_of_random_unit_rows():
    model = make()
    rows, _ = model.memory.read()
    assert len(model.memory) == K and model.memory.is_full and int(model.memory.ptr) == 0
    assert torch.allclose(rows.norm(dim=1), torch.ones(K), atol=1e-6)
    assert torch.linalg.matrix_rank(rows) == D  # random, not one repeated vector


def test_forward_returns_scalar_loss_and_collapse_monitors():
    model = make()
    loss, stats = model(views())
    assert loss.shape == () and torch.isfinite(loss) and loss.requires_grad
    assert set(stats) == {"loss", "teacher_entropy", "student_entropy", "distinct_rows", "student_std"}
    assert all(not v.requires_grad and v.shape == () for v in stats.values())
    assert 1 <= int(stats["distinct_rows"]) <= K


def test_student_and_teacher_embeddings_are_unit_vectors():
    model = make()
    s = model.student(views())
    t = model.teacher(views()[:2])
    assert s.shape == (4, B, D) and t.shape == (2, B, D)
    assert torch.allclose(s.norm(dim=-1), torch.ones(4, B), atol=1e-5)
    assert torch.allclose(t, s[:2], atol=1e-6)  # the teacher starts as an exact copy


def test_current_batch_is_never_in_the_memory_it_is_scored_against(monkeypatch):
    model = make()
    scored, original = [], model_module.massl_loss

    def spy(student, teacher, memory, blocks, **kw):
        scored.append(memory.clone())  # the memory this step's loss is computed against
        return original(student, teacher, memory, blocks, **kw)

    monkeypatch.setattr(model_module, "massl_loss", spy)
    before = model.memory.read()[0]
    v1, v2 = views(1), views(2)
    t1 = model.teacher(v1[:2])[1]  # (B, D) teacher embedding of global view 2
    model(v1)
    assert torch.equal(scored[0], before)  # scored against the snapshot taken before the write
    after = model.memory.read()[0]
    assert torch.allclose(after[:B], t1, atol=1e-6) and torch.equal(after[B:], before[B:])  # then written
    assert int(model.memory.ptr) == B
    # next step: scored against a memory holding step 1's rows but not its own
    t2 = model.teacher(v2[:2])[1]
    model(v2)
    assert torch.allclose(scored[1][:B], t1, atol=1e-6)
    assert not any(torch.allclose(row, t, atol=1e-4) for row in scored[1] for t in t2)
    assert torch.allclose(model.memory.read()[0][B : 2 * B], t2, atol=1e-6)


def test_memory_wraps_around_after_k_rows():
    model = make()
    for step in range(K // B + 1):
        model(views(step))
    assert int(model.memory.ptr) == B and len(model.memory) == K


def test_eval_mode_does_not_write_the_memory():
    model = make().eval()
    before = copy.deepcopy(model.memory.state_dict())
    with torch.no_grad():
        model(views())
    for k, v in model.memory.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_teacher_gets_no_gradient_and_moves_only_by_exact_ema():
    model = make()
    teacher0 = [p.clone() for p in model.teacher.parameters()]
    opt = torch.optim.SGD(model.student.parameters(), lr=0.5)
    loss, _ = model(views())
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.student.parameters())
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(teacher0, model.teacher.parameters()))  # the step moved only the student
    model.update_teacher_(0.9)
    for old, new, student in zip(teacher0, model.teacher.parameters(), model.student.parameters()):
        assert torch.allclose(new, 0.9 * old + 0.1 * student.detach(), atol=1e-7)
    assert any(not torch.equal(a, b) for a, b in zip(teacher0, model.teacher.parameters()))


def test_optimising_all_model_parameters_leaves_teacher_and_memory_alone():
    model = make()
    assert all(not p.requires_grad for p in model.teacher.parameters())
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith("student.") for n in names)
    assert "memory.rows" in dict(model.named_buffers())


def test_memory_survives_a_state_dict_round_trip():
    model = make()
    for step in range(3):
        model(views(step))
    state = model.state_dict()
    assert {"memory.rows", "memory.ptr", "memory.count"} <= set(state)
    clone = make()
    assert not torch.equal(clone.memory.rows, model.memory.rows)
    clone.load_state_dict(state)
    assert torch.equal(clone.memory.rows, model.memory.rows)
    assert int(clone.memory.ptr) == 3 * B and int(clone.memory.count) == K
    for a, b in zip(clone.teacher.parameters(), model.teacher.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("sampling", ["random", "contiguous", "none"])
def test_every_block_sampling_trains(sampling):
    model = make(block_sampling=sampling)
    loss, stats = model(views())
    loss.backward()
    assert torch.isfinite(loss)
    if sampling == "none":
        assert stats["teacher_entropy"] <= torch.log(torch.tensor(float(K)))


def test_blocks_come_from_the_given_generator():
    a, b = make(), make()
    b.load_state_dict(a.state_dict())
    la, _ = a(views(), generator=torch.Generator().manual_seed(0))
    lb, _ = b(views(), generator=torch.Generator().manual_seed(0))
    assert torch.equal(la, lb)


def test_teacher_temperature_argument_overrides_the_config():
    model = make().eval()
    with torch.no_grad():
        _, sharp = model(views(), teacher_temp=0.01)
        _, soft = model(views(), teacher_temp=1.0)
    assert sharp["teacher_entropy"] < soft["teacher_entropy"]


def test_backbone_attribute_is_the_student_backbone_and_registry_backbones_work():
    model = MaSSL(config(backbone="cnn", backbone_kwargs={"channels": (8, 8)}))
    assert model.backbone is model.student.backbone and model.backbone.feature_dim == 8
    loss, _ = model(views())
    loss.backward()
    assert model.backbone.forward_features(torch.rand(2, 1, 8, 8)).shape == (2, 8)


def test_multicrop_network_runs_each_resolution_once():
    calls = []
    backbone = TinyConv()
    backbone.forward_features = lambda x, f=backbone.forward_features: calls.append(tuple(x.shape)) or f(x)
    net = MultiCropNetwork(backbone, nn.Linear(12, D))
    out = net(views(n_local=3))
    assert calls == [(2 * B, 1, 8, 8), (3 * B, 1, 4, 4)]
    assert out.shape == (5, B, D)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(memory_size=30, block_size=8), "divide"),
        (dict(block_sampling="blockwise"), "block_sampling"),
        (dict(n_local=-1), "n_local"),
        (dict(out_dim=0), "out_dim"),
        (dict(student_temp=0.0), "student_temp"),
        (dict(momentum_base=1.5), "momentum_base"),
        (dict(image_shape=(8, 8)), "image_shape"),
    ],
)
def test_bad_config_raises(kw, match):
    with pytest.raises(ValueError, match=match):
        config(**kw)


def test_bad_backbone_and_views_raise():
    with pytest.raises(ValueError, match="forward_features"):
        MaSSL(config(), nn.Linear(3, 3))
    model = make()
    with pytest.raises(ValueError, match="2 global views"):
        model(views()[:1])
    with pytest.raises(ValueError, match="batch size"):
        model([torch.rand(B, 1, 8, 8), torch.rand(B + 1, 1, 8, 8)])
