"""The lm task's token maps: a text tokenized once into a memory-mapped file of ids."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from zoo_testutil import TINY, run_zoo

from zoo_core.data import text as text_data
from zoo_core.data import tokens
from zoo_core.errors import ZooError
from zoo_core.tasks.lm import LanguageModeling, LMOptions
from zoo_core.tokenizers.base import Tokenizer, fit_tokenizer

# Lines, blank lines, runs of spaces, tabs and non-ASCII: what chunk boundaries must survive.
TEXT = "".join(
    f"Line {i}: the cat sat on the mat.{'  ' * (i % 3)}\n"
    + "\n" * (i % 4 == 0)
    + f"\tindented {i} — naïve café ☕\n"
    for i in range(400)
)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ZOO_CACHE", str(folder))
    return folder


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _in_memory_batches(tokenizer, text, seq_len, seed, n=5):
    """What the lm task drew before token maps: the whole training text as one int64 tensor."""
    train_text, _ = text_data.split(text, 0.1)
    ids = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        starts = torch.randint(len(ids) - seq_len, (4,), generator=generator)
        windows = torch.stack([ids[s : s + seq_len + 1] for s in starts.tolist()])
        out.append((windows[:, :-1], windows[:, 1:]))
    return out


@pytest.mark.parametrize("tokenizer", ["char", "byte", "bpe"])
def test_batches_are_those_of_the_in_memory_path(cache, corpus, monkeypatch, tokenizer):
    # Small chunks, so that the text is encoded in hundreds of pieces.
    monkeypatch.setattr(tokens, "CHUNK_CHARS", 300)
    monkeypatch.setattr(tokens, "BATCH_CHUNKS", 3)
    task = LanguageModeling(LMOptions(tokenizer=tokenizer, seq_len=32, vocab_size=None))
    task.setup(str(corpus))
    fitted = fit_tokenizer(tokenizer, None, text_data.split(TEXT, 0.1)[0])
    assert task.tokenizer.to_dict() == fitted.to_dict()
    assert task.train_ids.dtype == torch.uint16
    train_text, val_text = text_data.split(TEXT, 0.1)
    assert task.train_ids.tolist() == fitted.encode(train_text)
    assert task.val_ids.tolist() == fitted.encode(val_text) and task.val_chars == len(val_text)
    generator = torch.Generator().manual_seed(7)
    for x, y in _in_memory_batches(fitted, TEXT, 32, seed=7):
        got_x, got_y = task.train_batch(4, generator)
        assert got_x.dtype == torch.long
        assert torch.equal(got_x, x) and torch.equal(got_y, y)


def test_windows_are_read_from_the_file_as_the_mapping_holds_them(cache, corpus):
    task = LanguageModeling(LMOptions(seq_len=16))
    task.setup(str(corpus))
    for part in (task._train_map, task._val_map):
        assert part.path is not None and part.path.is_file()  # read from the file, not mapped
        starts = [0, 7, len(part.ids) - 17, 3]
        expected = torch.stack([part.ids[s : s + 17] for s in starts])
        got = part.rows(starts, 17)
        assert got.dtype == part.ids.dtype and torch.equal(got, expected)
        assert part.rows([], 17).shape == (0, 17)
    # The validation windows of evaluate: inputs and targets one token on, from the file.
    pairs, ids = task._val_windows(16)[0:2], task.val_ids.long()
    assert torch.equal(pairs[:, 0], torch.stack([ids[0:16], ids[16:32]]))
    assert torch.equal(pairs[:, 1], torch.stack([ids[1:17], ids[17:33]]))


def test_the_map_is_a_file_of_uint16_ids(cache, corpus):
    task = LanguageModeling(LMOptions(seq_len=16))
    task.setup(str(corpus))
    (described,) = cache.glob("tokens/*.json")
    parts = json.loads(described.read_text())["parts"]
    assert [p["dtype"] for p in parts] == ["uint16", "uint16"]
    bins = sorted(cache.glob("tokens/*.bin"))
    assert [b.stat().st_size for b in bins] == [2 * p["tokens"] for p in parts]
    assert parts[0]["tokens"] == len(task.train_ids) and parts[1]["tokens"] == len(task.val_ids)
    on_disk = np.fromfile(bins[0], dtype=np.uint16)
    assert on_disk.tolist() == task.train_ids.tolist()


def test_the_second_run_reads_the_cached_map(cache, corpus, monkeypatch):
    LanguageModeling(LMOptions(seq_len=16)).setup(str(corpus))
    before = {p: p.stat().st_mtime_ns for p in cache.glob("tokens/*")}

    def no_build(*args, **kwargs):
        raise AssertionError("the map was built again")

    monkeypatch.setattr(tokens, "_build", no_build)
    again = LanguageModeling(LMOptions(seq_len=16))
    again.setup(str(corpus))
    assert len(again.train_ids) > 0
    assert {p: p.stat().st_mtime_ns for p in cache.glob("tokens/*")} == before


def _keys(cache: Path) -> set[str]:
    return {p.stem for p in cache.glob("tokens/*.json")}


def test_a_changed_file_or_tokenizer_gives_a_new_key(cache, corpus):
    LanguageModeling(LMOptions(seq_len=16)).setup(str(corpus))
    first = _keys(cache)
    assert len(first) == 1
    LanguageModeling(LMOptions(seq_len=16, tokenizer="byte")).setup(str(corpus))
    second = _keys(cache)
    assert len(second) == 2
    corpus.write_text(TEXT + "one more line\n", encoding="utf-8")
    changed = LanguageModeling(LMOptions(seq_len=16))
    changed.setup(str(corpus))
    assert len(_keys(cache)) == 3
    assert changed.val_ids.tolist()[-5:] == changed.tokenizer.encode("line\n")
    # Another held-out fraction cuts the text elsewhere: another map too.
    LanguageModeling(LMOptions(seq_len=16, val_fraction=0.2)).setup(str(corpus))
    assert len(_keys(cache)) == 4


class Wide(Tokenizer):
    """A real tokenizer of more ids than uint16 holds: each character's code point + 70,000."""

    name = "wide"

    @property
    def vocab_size(self):
        return 70_000 + 0x110000

    def encode(self, text):
        return [70_000 + ord(c) for c in text]

    def decode(self, ids):
        return "".join(chr(i - 70_000) for i in ids)

    def to_dict(self):
        return {}


def test_a_large_vocabulary_takes_uint32(cache):
    (part,) = tokens.token_maps("wide", lambda: iter(["héllo\nworld\n"]), Wide(), what="t")
    assert part.ids.dtype == torch.uint32
    assert part.ids.long().tolist() == Wide().encode("héllo\nworld\n")
    assert tokens.dtype_for(65_536) == np.uint16 and tokens.dtype_for(65_537) == np.uint32


def test_a_failed_build_leaves_nothing_behind(cache):
    def pieces():
        yield "a first piece\n"
        raise ZooError("the reader failed")

    char = fit_tokenizer("char", None, "a first piece\n")
    with pytest.raises(ZooError, match="the reader failed"):
        tokens.token_maps("broken", pieces, char, what="t")
    assert [p.name for p in cache.glob("tokens/*") if not p.name.endswith(".lock")] == []
    assert not any(p.name.startswith(".") for p in cache.rglob("*"))


def test_stream_reading_gives_the_text_read_text_gives(tmp_path):
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"\xef\xbb\xbfwith a BOM\r\nand CRLF\r\n")
    (folder / "sub" / "b.txt").write_bytes(b"old Mac\rline ends\r" + "é".encode() * 5000)
    (folder / ".hidden.txt").write_text("not read")
    for block in (1, 2, 3, 7, 1 << 20):
        assert "".join(text_data.iter_text(folder, block)) == text_data.read_text(folder)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n" * 10 + b"\xff")
    with pytest.raises(ZooError, match=r"not UTF-8 text \(invalid start byte at byte 50\)"):
        list(text_data.iter_text(bad, 7))
    (tmp_path / "blank.txt").write_text(" \n\n ")
    with pytest.raises(ZooError, match="is empty"):
        list(text_data.iter_text(tmp_path / "blank.txt"))


def test_line_chunks_keep_the_text_and_what_bpe_makes_of_it():
    for size in (1, 5, 50, 333):
        chunks = list(tokens.line_chunks([TEXT[i : i + 97] for i in range(0, len(TEXT), 97)], size))
        assert "".join(chunks) == TEXT
        assert len(chunks) > 1
    bpe = fit_tokenizer("bpe", 300, TEXT)
    chunks = list(tokens.line_chunks([TEXT], 200))
    assert [i for ids in bpe.encode_batch(chunks) for i in ids] == bpe.encode(TEXT)


def test_char_tokenizers_vectorised_encoder_is_encode():
    char = fit_tokenizer("char", None, "abc é\n")
    text = "abc é\nzzz ☕ cab"  # unseen characters are id 0
    assert char.encode_batch([text, ""])[0].tolist() == char.encode(text)
    assert char.encode_batch([""])[0].tolist() == []


RACE = """
import sys, time
from zoo_core.data import tokens
from zoo_core.tokenizers.base import fit_tokenizer

log = open(sys.argv[1], "a")

def pieces():
    log.write("build\\n"); log.flush()
    for i in range(20):
        time.sleep(0.02)
        yield f"line {i}\\n"

char = fit_tokenizer("char", None, "line 0123456789\\n")
(part,) = tokens.token_maps("race", pieces, char, what="t")
print(part.ids.tolist())
"""


def test_two_processes_build_one_map_and_read_the_same(cache, tmp_path):
    log = tmp_path / "builds.log"
    env = {**os.environ, "ZOO_CACHE": str(cache)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(log)], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert log.read_text() == "build\n"  # one built it, the other waited and read it
    assert outs[0] == outs[1] and len(json.loads(outs[0])) == len(
        "".join(f"line {i}\n" for i in range(20))
    )


@pytest.mark.slow
def test_two_ranks_share_one_map(tmp_path):
    cache = tmp_path / "cache"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 3, encoding="utf-8")
    env = {"ZOO_CACHE": str(cache)}
    args = ["--data", corpus, "--steps", "3", *TINY, "--quiet"]
    run_zoo("train", "lstm", "--nproc", "2", "--out", tmp_path / "two", *args, env=env)
    assert len(_keys(cache)) == 1  # both ranks read the one map
    assert len(list(cache.glob("tokens/*.bin"))) == 2  # its training and validation parts
    assert not [p for p in cache.rglob(".*")]  # no temporary file left
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["data"] == str(corpus.resolve())
