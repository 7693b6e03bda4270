import pytest
import torch

from hetmem.memory import FeatureQueue


def rows(start: int, n: int, dim: int = 3) -> torch.Tensor:
    """Rows whose every entry is their global index, so order is visible."""
    return torch.arange(start, start + n, dtype=torch.float32).unsqueeze(1).repeat(1, dim)


def test_starts_empty_and_reads_nothing():
    q = FeatureQueue(dim=3, size=5)
    r, y = q.read()
    assert len(q) == 0 and r.shape == (0, 3) and y.shape == (0,)
    assert not q.is_full


def test_partial_write_fills_prefix_in_order():
    q = FeatureQueue(dim=3, size=5)
    q.write_(rows(0, 2), torch.tensor([7, 8]))
    q.write_(rows(2, 1), torch.tensor([9]))
    r, y = q.read()
    assert r[:, 0].tolist() == [0, 1, 2] and y.tolist() == [7, 8, 9]
    assert int(q.ptr) == 3 and len(q) == 3


def test_wrap_around_overwrites_oldest():
    q = FeatureQueue(dim=3, size=5)
    q.write_(rows(0, 4))
    q.write_(rows(4, 3))  # indices 4, 0, 1 get rows 4, 5, 6: a batch that does not divide the size
    r, _ = q.read()
    assert q.is_full and int(q.ptr) == 2
    assert r[:, 0].tolist() == [5, 6, 2, 3, 4]


def test_oversize_write_keeps_newest_rows():
    q = FeatureQueue(dim=3, size=4)
    q.write_(rows(0, 1))
    q.write_(rows(1, 10), torch.arange(1, 11))  # more rows than the queue holds
    r, y = q.read()
    assert sorted(r[:, 0].tolist()) == [7, 8, 9, 10]
    assert sorted(y.tolist()) == [7, 8, 9, 10]
    assert len(q) == 4


@pytest.mark.parametrize("sizes", [[3, 3, 3], [7], [1, 9, 2], [4, 4, 4, 1], [5, 0, 11]])
def test_any_split_of_writes_equals_writing_rows_one_at_a_time(sizes):
    one, many = FeatureQueue(dim=3, size=4), FeatureQueue(dim=3, size=4)
    start = 0
    for n in sizes:
        many.write_(rows(start, n), torch.arange(start, start + n))
        for i in range(start, start + n):
            one.write_(rows(i, 1), torch.tensor([i]))
        start += n
    assert torch.equal(one.rows, many.rows) and torch.equal(one.labels, many.labels)
    assert int(one.ptr) == int(many.ptr) and len(one) == len(many)


def test_empty_write_is_a_no_op():
    q = FeatureQueue(dim=3, size=4)
    q.write_(torch.zeros(0, 3))
    assert len(q) == 0 and int(q.ptr) == 0


def test_read_is_a_detached_copy():
    q = FeatureQueue(dim=3, size=4)
    q.write_(rows(0, 2))
    r, _ = q.read()
    q.write_(rows(100, 2))
    assert r[:, 0].tolist() == [0, 1]  # unaffected by the later write
    assert not r.requires_grad


def test_write_takes_no_gradient_and_detaches():
    q = FeatureQueue(dim=3, size=4)
    x = torch.randn(2, 3, requires_grad=True)
    q.write_(x * 2)
    assert not q.rows.requires_grad


def test_state_dict_round_trip_restores_rows_pointer_and_count():
    q = FeatureQueue(dim=3, size=5)
    q.write_(rows(0, 7), torch.arange(7))
    state = q.state_dict()
    assert set(state) == {"rows", "labels", "ptr", "count"}  # all persistent
    q2 = FeatureQueue(dim=3, size=5)
    q2.load_state_dict(state)
    assert torch.equal(q2.rows, q.rows) and torch.equal(q2.labels, q.labels)
    assert int(q2.ptr) == int(q.ptr) == 2 and len(q2) == 5


def test_reset_empties():
    q = FeatureQueue(dim=3, size=5)
    q.write_(rows(0, 3))
    q.reset()
    assert len(q) == 0 and int(q.ptr) == 0 and q.read()[0].shape == (0, 3)


@pytest.mark.parametrize("kwargs, match", [({"dim": 0, "size": 3}, "dim"), ({"dim": 3, "size": -1}, "size")])
def test_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureQueue(**kwargs)


def test_bad_write_shapes():
    q = FeatureQueue(dim=3, size=5)
    with pytest.raises(ValueError, match=r"rows must have shape \(N, 3\)"):
        q.write_(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        q.write_(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))


def test_repr():
    assert repr(FeatureQueue(dim=3, size=5)) == "FeatureQueue(dim=3, size=5)"


def test_fingerprints_are_equal_for_equal_inputs_in_any_batch():
    from hetmem.memory import fingerprint

    x = torch.randn(10, 3, 4)
    ids = fingerprint(x)
    assert ids.dtype == torch.long and ids.shape == (10,)
    assert torch.equal(fingerprint(x[[7, 2]]), ids[[7, 2]])
    assert len(set(ids.tolist())) == 10
    y = x.clone()
    y[0, 1, 2] += 1e-6  # one number off in the last bits: another input
    assert fingerprint(y)[0] != ids[0]


def test_queue_tracks_ids_when_asked_and_wraps_them_with_the_rows():
    queue = FeatureQueue(dim=2, size=3, track_ids=True)
    queue.write_(torch.ones(2, 2), torch.tensor([0, 1]), torch.tensor([5, 6]))
    queue.write_(torch.ones(2, 2), torch.tensor([0, 1]), torch.tensor([7, 8]))
    assert queue.read_ids().tolist() == [8, 6, 7]
    queue.write_(torch.ones(1, 2))  # rows without ids
    assert queue.read_ids().tolist() == [8, -1, 7]
    assert "ids" in queue.state_dict() and FeatureQueue(dim=2, size=3).read_ids() is None
    with pytest.raises(ValueError, match=r"ids must have shape \(1,\)"):
        queue.write_(torch.ones(1, 2), ids=torch.tensor([1, 2]))
