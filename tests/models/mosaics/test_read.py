import pytest
import torch

from hetmem.models.mosaics import causal_attention, past_attention
from hetmem.models.mosaics.read import past_attention_reference


def test_shifted_is_causal_read_equals_the_strict_mask():
    q = torch.randn(2, 3, 9, 4)
    k = torch.randn(2, 3, 9, 4)
    v = torch.randn(2, 3, 9, 5)
    fused = past_attention(q, k[:, :, :-1], v[:, :, :-1], scale=1.7)
    assert torch.allclose(fused, past_attention_reference(q, k, v, scale=1.7), atol=1e-5)
    assert torch.equal(fused[:, :, 0], torch.zeros(2, 3, 5))


def test_row_t_reads_only_strictly_earlier_entries():
    q = torch.randn(1, 1, 6, 2)
    v = torch.randn(1, 1, 6, 2)
    base = past_attention(q, q[:, :, :-1], v[:, :, :-1])
    v2 = v.clone()
    v2[:, :, 3] += 10.0  # the value stored at position 3 is read by rows 4 and 5 only
    moved = past_attention(q, q[:, :, :-1], v2[:, :, :-1])
    assert torch.equal(moved[:, :, :4], base[:, :, :4])
    assert not torch.allclose(moved[:, :, 4:], base[:, :, 4:])


@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("T", [1, 3])
def test_chunk_after_cached_entries_equals_the_whole_sequence(n, T):
    q = torch.randn(2, 2, n + T, 4)
    v = torch.randn(2, 2, n + T, 4)
    whole = past_attention(q, q[:, :, :-1], v[:, :, :-1])
    chunk = past_attention(q[:, :, n:], q[:, :, :-1], v[:, :, :-1])
    assert torch.allclose(chunk, whole[:, :, n:], atol=1e-6)


def test_causal_attention_chunks_equal_the_whole_sequence():
    q, k, v = (torch.randn(2, 2, 7, 4) for _ in range(3))
    whole = causal_attention(q, k, v)
    scores = (q @ k.transpose(-1, -2) / 2).masked_fill(~torch.ones(7, 7, dtype=torch.bool).tril(), float("-inf"))
    assert torch.allclose(whole, torch.softmax(scores, -1) @ v, atol=1e-5)
    for start in (3, 6):
        assert torch.allclose(causal_attention(q[:, :, start:], k, v), whole[:, :, start:], atol=1e-6)


def test_single_position_returns_zeros_and_bad_shapes_raise():
    q = torch.randn(1, 1, 1, 3)
    assert torch.equal(past_attention(q, q[:, :, :0], q[:, :, :0]), torch.zeros(1, 1, 1, 3))
    with pytest.raises(ValueError, match="n \\+ T - 1"):
        past_attention(torch.randn(1, 1, 4, 3), torch.randn(1, 1, 2, 3), torch.randn(1, 1, 2, 3))
    with pytest.raises(ValueError, match="at least as many keys"):
        causal_attention(torch.randn(1, 1, 4, 3), torch.randn(1, 1, 2, 3), torch.randn(1, 1, 2, 3))
