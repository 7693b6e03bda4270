import pytest
import torch

from hetmem.models.mosaics import apply_rotary, rotary_angles


def test_rotated_scores_depend_on_the_offset_only():
    q, k = torch.randn(1, 2, 1, 8, dtype=torch.float64), torch.randn(1, 2, 1, 8, dtype=torch.float64)

    def score(p, s):
        cq, sq = rotary_angles(torch.tensor([p]), 8, dtype=torch.float64)
        ck, sk = rotary_angles(torch.tensor([s]), 8, dtype=torch.float64)
        return (apply_rotary(q, cq, sq) * apply_rotary(k, ck, sk)).sum(-1)

    assert torch.allclose(score(7, 3), score(1004, 1000), atol=1e-9)
    assert not torch.allclose(score(7, 3), score(7, 4))


def test_rotation_keeps_norms_and_position_zero_is_identity():
    x = torch.randn(2, 3, 5, 6)
    cos, sin = rotary_angles(torch.arange(5), 6)
    y = apply_rotary(x, cos, sin)
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.equal(y[:, :, 0], x[:, :, 0])
    with pytest.raises(ValueError, match="even"):
        rotary_angles(torch.arange(3), 5)
