import pytest
import torch

from hetmem.models.massl.augment import MultiCropAugmentation, gaussian_blur, random_resized_crop, solarize


def images(B=6, C=1, H=28, W=28, seed=0):
    return torch.rand(B, C, H, W, generator=torch.Generator().manual_seed(seed))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def plain(**kw):
    """No photometric noise: views differ from plain crops only by what a test switches on."""
    defaults = dict(jitter_p=0.0, global2_blur_p=0.0, solarize_p=0.0, local_blur_p=0.0)
    return MultiCropAugmentation(**{**defaults, **kw})


def test_view_shapes_follow_sizes_and_count():
    views = MultiCropAugmentation(n_local=3, local_size=12)(images(), generator=gen())
    assert [tuple(v.shape) for v in views] == [(6, 1, 28, 28)] * 2 + [(6, 1, 12, 12)] * 3
    views = MultiCropAugmentation(n_local=0, global_size=20)(images(C=2, H=32, W=24), generator=gen())
    assert [tuple(v.shape) for v in views] == [(6, 2, 20, 20)] * 2


def test_same_generator_state_gives_same_views_and_another_seed_differs():
    aug = MultiCropAugmentation(n_local=2)
    x = images()
    a, b, c = aug(x, generator=gen(3)), aug(x, generator=gen(3)), aug(x, generator=gen(4))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_views_stay_in_unit_range():
    x = images(B=32)
    x[0] = 1.0  # saturated image: jitter and blur must not push it past 1
    x[1] = 0.0
    for v in MultiCropAugmentation(n_local=4, solarize_p=0.5, flips=True)(x, generator=gen()):
        assert v.min() >= 0.0 and v.max() <= 1.0
        assert torch.isfinite(v).all()


def test_full_crop_is_the_identity_and_only_view_one_is_always_blurred():
    x = images()
    aug = plain(n_local=1, global_scale=(1.0, 1.0), ratio=(1.0, 1.0))
    v1, v2, _ = aug(x, generator=gen())
    assert torch.allclose(v2, x, atol=1e-5)  # no blur, no solarize, no jitter on view 2
    assert not torch.allclose(v1, x, atol=1e-3)  # view 1 always blurred
    sharp = plain(n_local=0, global_scale=(1.0, 1.0), ratio=(1.0, 1.0), blur_sigma=(1.0, 1.0))
    assert torch.allclose(sharp(x, generator=gen())[0], gaussian_blur(x, torch.ones(6)), atol=1e-5)


def test_solarize_only_touches_view_two():
    x = images(B=16)
    v1, v2, v3 = plain(n_local=1, solarize_p=1.0, global_scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, generator=gen())
    assert torch.allclose(v2, solarize(x), atol=1e-5)
    assert v2.max() <= 0.5 + 1e-6 and v1.max() > 0.5 and v3.max() > 0.5


def test_flips_mirror_some_images_and_are_off_by_default():
    x = images(B=16)
    kw = dict(n_local=0, global_scale=(1.0, 1.0), ratio=(1.0, 1.0))
    views = plain(**kw)(x, generator=gen())
    assert torch.allclose(views[1], x, atol=1e-5)
    flipped = plain(flips=True, **kw)(x, generator=gen())[1]
    same = [(flipped[b] - x[b]).abs().max() < 1e-5 for b in range(16)]
    mirrored = [(flipped[b] - x[b].flip(-1)).abs().max() < 1e-5 for b in range(16)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(same) and any(mirrored)


def test_local_crops_zoom_in():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, :, :14] = 1.0  # left half white: a small crop is mostly all white or all black
    local = plain(n_local=1, local_size=12, local_scale=(0.05, 0.1))(x, generator=gen())[2]
    pure = ((local.amin(dim=(1, 2, 3)) > 0.99) | (local.amax(dim=(1, 2, 3)) < 0.01)).float().mean()
    assert pure > 0.5


def test_random_resized_crop_scale_one_keeps_the_image():
    x = images(C=3, H=16, W=16)
    out = random_resized_crop(x, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=gen())
    assert torch.allclose(out, x, atol=1e-5)


def test_gaussian_blur_keeps_constants_and_mass_and_spreads_with_sigma():
    flat = torch.full((2, 3, 9, 9), 0.3)
    assert torch.allclose(gaussian_blur(flat, torch.tensor([0.5, 2.0])), flat, atol=1e-6)
    delta = torch.zeros(2, 1, 15, 15)
    delta[:, :, 7, 7] = 1.0
    out = gaussian_blur(delta, torch.tensor([0.7, 1.5]))
    assert torch.allclose(out.sum(dim=(1, 2, 3)), torch.ones(2), atol=1e-5)
    assert out[1, 0, 7, 7] < out[0, 0, 7, 7]
    assert torch.allclose(out[0, 0], out[0, 0].T, atol=1e-6)  # isotropic


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(n_local=-1), "n_local"),
        (dict(local_size=0), "local_size"),
        (dict(global_scale=(0.5, 1.5)), "global_scale"),
        (dict(local_scale=(0.3, 0.1)), "local_scale"),
        (dict(solarize_p=1.5), "solarize_p"),
        (dict(brightness=1.0), "brightness"),
    ],
)
def test_bad_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        MultiCropAugmentation(**kw)


def test_rejects_non_image_input():
    with pytest.raises(ValueError, match="B, C, H, W"):
        MultiCropAugmentation()(torch.rand(4, 28, 28))
