import pytest
import torch

from hetmem.models.massl.blocks import num_blocks, sample_memory_blocks


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_random_blocks_partition_the_memory():
    blocks = sample_memory_blocks(48, 12, "random", generator=gen())
    assert blocks.shape == (4, 12) and blocks.dtype == torch.long
    assert torch.equal(blocks.flatten().sort().values, torch.arange(48))  # every row exactly once


def test_random_blocks_change_every_draw_and_repeat_with_the_seed():
    a = sample_memory_blocks(64, 16, generator=gen(1))
    b = sample_memory_blocks(64, 16, generator=gen(1))
    g = gen(1)
    first, second = sample_memory_blocks(64, 16, generator=g), sample_memory_blocks(64, 16, generator=g)
    assert torch.equal(a, b) and torch.equal(a, first)
    assert not torch.equal(first, second)
    assert not torch.equal(a, torch.arange(64).view(4, 16))  # not storage order


def test_random_blocks_mix_old_and_new_rows():
    # FIFO writes put consecutive rows next to each other; a random block is not one age group
    spans = [(b.max() - b.min()).item() for b in sample_memory_blocks(1024, 64, generator=gen())]
    assert min(spans) > 512


def test_contiguous_blocks_are_ordered_ranges():
    blocks = sample_memory_blocks(12, 4, "contiguous")
    assert blocks.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert torch.equal(blocks, sample_memory_blocks(12, 4, "contiguous", generator=gen(5)))


def test_none_is_one_block_of_the_whole_memory():
    blocks = sample_memory_blocks(10, 7, "none")  # block_size is ignored
    assert blocks.shape == (1, 10) and blocks.flatten().tolist() == list(range(10))
    assert num_blocks(10, 7, "none") == 1 and num_blocks(12, 4, "random") == 3


def test_device_argument_places_the_indices():
    assert sample_memory_blocks(8, 4, device="cpu").device.type == "cpu"


@pytest.mark.parametrize(
    "args, match",
    [
        ((10, 4, "random"), "divide"),
        ((10, 3, "contiguous"), "divide"),
        ((10, 5, "blockwise"), "block_sampling"),
        ((0, 1, "random"), "memory_size"),
        ((8, 0, "random"), "block_size"),
    ],
)
def test_bad_arguments_raise(args, match):
    with pytest.raises(ValueError, match=match):
        sample_memory_blocks(*args)
