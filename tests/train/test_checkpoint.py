import pytest
import torch

from hetmem.errors import CheckpointError
from hetmem.train.checkpoint import AtomicCheckpointIO, check_compatible, read_checkpoint


def good(value=1.0):
    return {"state_dict": {"w": torch.full((3,), value)}, "hetmem": {"num_classes": 3, "feature_dim": 16, "config": {"variant": "hma"}}}


def test_save_is_atomic_and_keeps_the_previous_file_on_failure(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "ckpt" / "last.ckpt"
    io.save_checkpoint(good(1.0), path)
    real_save = torch.save

    def dies_midway(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")  # some bytes reach the temporary file, then the process 'dies'
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint(good(2.0), path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(read_checkpoint(path)["state_dict"]["w"], torch.full((3,), 1.0))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_truncated_and_corrupt_files_are_one_clear_error(tmp_path):
    path = tmp_path / "a.ckpt"
    AtomicCheckpointIO().save_checkpoint(good(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        read_checkpoint(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.ckpt")


class Evil:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_loads_are_weights_only(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match=r"holds Python objects besides tensors \([\w.]*print\)") as err:
        read_checkpoint(path)
    message = str(err.value).replace(str(path), "")
    assert "weights_only" not in message and "False" not in message  # never the advice to load it unsafely
    assert "this would run on load" not in capsys.readouterr().out


def test_a_dict_without_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.ckpt"
    torch.save({"weights": torch.ones(1)}, path)
    with pytest.raises(CheckpointError, match="no 'state_dict'"):
        read_checkpoint(path)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_classes": 4, "feature_dim": 16, "variant": "hma"}, "num_classes=3 but this model has num_classes=4"),
    ({"num_classes": 3, "feature_dim": 8, "variant": "hma"}, "feature_dim=16 but this model has feature_dim=8"),
    ({"num_classes": 3, "feature_dim": 16, "variant": "none"}, "variant='hma'"),
])
def test_compatibility_names_the_mismatch(kwargs, match):
    check_compatible(good(), num_classes=3, feature_dim=16, variant="hma")
    with pytest.raises(CheckpointError, match=match):
        check_compatible(good(), **kwargs)
