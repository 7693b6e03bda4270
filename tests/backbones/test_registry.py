import inspect

import pytest
import torch
from torch import nn

from hetmem.backbones import InputSpec, compatible_backbones, create_backbone, list_backbones, register_backbone
from hetmem.backbones.registry import _REGISTRY
from hetmem.models.hma import HMAClassifier, HMAConfig

LIBRARY = ["cnn", "gcn", "gcn-v", "gin", "gin-v", "mlp", "resnet18", "vit"]


def library(names: list[str]) -> list[str]:
    """Drops the test-only backbones that conftest files register (their names start with '_')."""
    return [n for n in names if not n.startswith("_")]


def test_lists_every_library_backbone():
    assert library(list_backbones()) == LIBRARY


@pytest.mark.parametrize(
    "spec, expected",
    [
        (InputSpec.vector(13), ["mlp"]),
        (InputSpec.image(1, 28, 28), ["cnn", "mlp", "resnet18", "vit"]),
        (InputSpec.graph(), ["gcn", "gcn-v", "gin", "gin-v"]),
    ],
)
def test_compatible_backbones_by_input_kind(spec, expected):
    assert library(compatible_backbones(spec)) == expected


def test_unknown_name_raises():
    with pytest.raises(ValueError, match=r"unknown backbone 'resnet50'; expected one of \['"):
        create_backbone("resnet50", InputSpec.image(3, 32, 32))


@pytest.mark.parametrize(
    "name, spec, match",
    [
        ("cnn", InputSpec.vector(13), r"backbone 'cnn' takes image input, but the task gives vector \(13,\); backbones for this input: \[.*'mlp'\]"),
        ("gin", InputSpec.image(1, 28, 28), "backbone 'gin' takes graph input, but the task gives image"),
        ("mlp", InputSpec.graph(), "backbone 'mlp' takes image or vector input, but the task gives graph"),
    ],
)
def test_wrong_input_kind_raises(name, spec, match):
    with pytest.raises(ValueError, match=match):
        create_backbone(name, spec)


def test_registering_a_taken_name_raises():
    with pytest.raises(ValueError, match="'mlp' is already registered"):
        register_backbone("mlp", kinds=("vector",))(lambda spec: nn.Identity())


@pytest.mark.parametrize("name", LIBRARY)
def test_factories_take_keyword_options_and_have_a_summary(name):
    """The training config checks backbone_options against these keyword-only parameters."""
    entry = _REGISTRY[name]
    params = list(inspect.signature(entry.factory).parameters.values())
    assert params[0].name == "spec" and all(p.kind == p.KEYWORD_ONLY for p in params[1:])
    assert entry.doc


@pytest.mark.parametrize(
    "name, spec, kwargs",
    [
        ("mlp", InputSpec.image(2, 14, 14), {}),
        ("cnn", InputSpec.image(1, 8, 8), {}),
        ("resnet18", InputSpec.image(3, 32, 32), {"width": 4}),
        ("vit", InputSpec.image(1, 14, 14), {"dim": 16, "depth": 1}),
    ],
)
def test_image_backbones_share_the_interface_and_follow_their_device(name, spec, kwargs):
    net = create_backbone(name, spec, **kwargs)
    assert isinstance(net.feature_dim, int) and type(net).forward is type(net).forward_features
    out = net.to("meta")(torch.randn(2, *spec.shape, device="meta"))  # no tensor is made on a fixed device
    assert out.device.type == "meta" and out.shape == (2, net.feature_dim)


def test_doc_example():
    assert create_backbone("mlp", InputSpec.image(2, 14, 14)).feature_dim == 390


def _train_step_and_eval(model: HMAClassifier, x, y: torch.Tensor) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(2):
        logits = model(x, y)
        loss = nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logits.shape == (y.shape[0], 3) and len(model.head.queue) == 2 * y.shape[0]
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()


def test_an_image_backbone_in_hma():
    backbone = create_backbone("cnn", InputSpec.image(1, 14, 14), channels=(8, 16))
    model = HMAClassifier(backbone, HMAConfig(num_classes=3, queue_size=16, slots_per_class=2, label_dim=8))
    x, y = torch.randn(6, 1, 14, 14), torch.tensor([0, 1, 2, 0, 1, 2])
    _train_step_and_eval(model, x, y)
    assert model.backbone.convs[0].weight.grad.abs().sum() > 0


def test_a_graph_backbone_in_hma(molecules):
    backbone = create_backbone("gin-v", InputSpec.graph(), hidden_dim=16, num_layers=2)
    model = HMAClassifier(backbone, HMAConfig(num_classes=3, queue_size=16, slots_per_class=2, label_dim=8))
    y = torch.tensor([0, 1, 2, 1])
    _train_step_and_eval(model, molecules, y)
    assert model.backbone.node_encoder.atom_embedding_list[0].weight.grad.abs().sum() > 0
