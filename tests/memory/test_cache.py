import copy
import pickle

import pytest
import torch
from torch import nn

from hetmem.memory import StateCache
from hetmem.memory.cache import state_fingerprint


def test_fingerprint_sees_versions_storage_and_mode():
    lin = nn.Linear(3, 3)
    key = state_fingerprint(lin)
    assert state_fingerprint(lin) == key
    with torch.no_grad():
        lin.bias.zero_()
    assert state_fingerprint(lin) != key
    key = state_fingerprint(lin)
    lin.weight.data = torch.randn(3, 3)
    assert state_fingerprint(lin) != key
    key = state_fingerprint(lin)
    assert state_fingerprint(lin.eval()) != key
    with torch.inference_mode():
        assert state_fingerprint(lin) != key  # inference mode is part of the key
        assert state_fingerprint(nn.Linear(2, 2)) is None  # inference tensors have no version counter


def test_a_failing_compute_leaves_the_cache_empty():
    lin, cache = nn.Linear(2, 2), StateCache()
    with pytest.raises(ZeroDivisionError):
        cache.get(lin, lambda: 1 / 0)
    assert cache.get(lin, lambda: 7) == 7 and cache.misses == 1


def test_copies_and_pickles_start_empty():
    lin, cache = nn.Linear(2, 2), StateCache()
    cache.get(lin, lambda: torch.ones(1000))
    for twin in (copy.deepcopy(cache), pickle.loads(pickle.dumps(cache))):
        assert twin._key is None and twin._storages == [] and twin.misses == 0
    assert "filled=True" in repr(cache)
