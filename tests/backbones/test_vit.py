import pytest
import torch

from hetmem.backbones import InputSpec, create_backbone
from hetmem.backbones.vit import Attention, VisionTransformer, default_patch_size

SMALL = {"dim": 32, "depth": 2, "num_heads": 4}


@pytest.mark.parametrize(
    "height, width, patch_size, num_patches",
    [(32, 32, 4, 64), (28, 28, 4, 49), (14, 14, 2, 49), (8, 8, 2, 16), (7, 7, 1, 49), (16, 32, 4, 32)],
)
def test_default_patch_size_aims_for_16_to_64_patches(height, width, patch_size, num_patches):
    assert default_patch_size(height, width) == patch_size
    net = VisionTransformer(1, (height, width), **SMALL)
    assert (net.patch_size, net.num_patches) == (patch_size, num_patches)
    assert net.pos_embed.shape == (1, 1 + num_patches, 32)


@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("channels, size", [(1, 8), (2, 14), (1, 28), (3, 32)])
def test_every_supported_image_size(channels, size, B):
    net = create_backbone("vit", InputSpec.image(channels, size, size), **SMALL)
    assert net.forward_features(torch.randn(B, channels, size, size)).shape == (B, 32)
    assert net.feature_dim == 32


def test_defaults():
    net = create_backbone("vit", InputSpec.image(3, 32, 32))
    assert net.feature_dim == 128 and len(net.blocks) == 4
    assert net.blocks[0].attn.num_heads == 4 and net.blocks[0].mlp.fc1.out_features == 512


def test_features_are_the_cls_token_after_the_final_norm():
    net = VisionTransformer(1, (8, 8), **SMALL).eval()
    seen = []
    net.norm.register_forward_hook(lambda module, inputs, output: seen.append(output))
    out = net(torch.randn(2, 1, 8, 8))
    assert seen[0].shape == (2, 17, 32)  # CLS + 16 patches
    assert torch.equal(out, seen[0][:, 0])
    with torch.no_grad():
        net.cls_token.add_(1.0)
    assert not torch.allclose(net(torch.randn(2, 1, 8, 8)), out)


def test_patches_are_positioned():
    """Swapping two patches changes the features: the position embedding breaks the symmetry."""
    net = VisionTransformer(1, (8, 8), patch_size=4, **SMALL).eval()
    x = torch.randn(1, 1, 8, 8)
    swapped = torch.cat([x[..., 4:], x[..., :4]], dim=-1)  # left and right halves exchanged
    assert not torch.allclose(net(x), net(swapped), atol=1e-4)


def test_fused_and_manual_attention_agree():
    attn = Attention(16, num_heads=4).eval()
    x = torch.randn(2, 5, 16)
    o1 = attn(x)
    attn.fused = False
    o2 = attn(x)
    assert torch.allclose(o1, o2, atol=1e-5)


def test_gradients_reach_the_patch_embedding_and_positions():
    net = VisionTransformer(1, (14, 14), **SMALL)
    out = net(torch.randn(2, 1, 14, 14))
    (out * torch.randn_like(out)).sum().backward()  # random weights: a plain sum is constant after a norm layer
    for p in (net.patch_embed.weight, net.pos_embed, net.cls_token):
        assert p.grad is not None and p.grad.abs().sum() > 1e-4


def test_dropout_acts_in_training_only():
    net = VisionTransformer(1, (8, 8), dropout=0.3, **SMALL)
    x = torch.randn(2, 1, 8, 8)
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


def test_wrong_image_size_raises():
    net = VisionTransformer(1, (8, 8), **SMALL)
    with pytest.raises(ValueError, match=r"built for \(8, 8\) images"):
        net(torch.randn(2, 1, 16, 16))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"patch_size": 5}, "patch_size must divide the image height and width"),
        ({"patch_size": 0}, "patch_size must be a positive int"),
        ({"dim": 30, "num_heads": 4}, "num_heads must divide dim"),
        ({"depth": 0}, "depth must be a positive int"),
        ({"mlp_ratio": -1.0}, "mlp_ratio must be a positive number"),
        ({"dropout": -0.1}, "dropout must be a probability"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_backbone("vit", InputSpec.image(1, 28, 28), **kwargs)
