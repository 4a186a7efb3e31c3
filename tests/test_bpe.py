"""The byte-level BPE tokenizer: exact round trips, save/restore, a clear error without its package."""

import json
import sys

import pytest

from zoo_core.data.text import default_text, split
from zoo_core.errors import ZooError

pytest.importorskip("tokenizers")
from zoo_core.tokenizers.bpe import BPETokenizer  # noqa: E402

UNICODE = "naïve café — 東京 🦒 Ωμέγα\n\ttabs,  double  spaces\r\nand a trailing space \u200b "


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.fit(split(default_text(), 0.1)[0], vocab_size=512)


def test_round_trip_on_the_default_text(bpe):
    text = default_text()
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    assert bpe.vocab_size == 512 and max(ids) < 512
    assert len(ids) < 0.6 * len(text)  # merges learned: far fewer tokens than characters


def test_round_trip_on_unicode_never_seen_in_training(bpe):
    assert bpe.decode(bpe.encode(UNICODE)) == UNICODE
    assert bpe.decode(bpe.encode("")) == ""


def test_saved_and_restored_through_tokenizer_json(bpe, tmp_path):
    path = tmp_path / "tokenizer.json"
    bpe.save(path)
    again = BPETokenizer.load(path)
    sample = default_text()[:20000] + UNICODE
    assert again.encode(sample) == bpe.encode(sample)
    assert again.vocab_size == bpe.vocab_size


def test_vocabulary_too_small_is_a_clear_error():
    with pytest.raises(ZooError, match="vocab_size 100 is too small"):
        BPETokenizer.fit("some text", vocab_size=100)


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # what Python does when it is absent
    with pytest.raises(ZooError, match=r"pip install 'zoo-core\[bpe\]'"):
        BPETokenizer.fit("some text")


def test_lm_trains_with_bpe_and_restores_it(zoo, tmp_path):
    out = tmp_path / "run"
    zoo(
        "train",
        "lstm",
        "--steps",
        "2",
        "--out",
        out,
        "--quiet",
        "--batch-size",
        "4",
        "--set",
        "tokenizer=bpe",
        "--set",
        "vocab_size=400",
        "--set",
        "hidden_size=16",
        "--set",
        "embed_dim=16",
        "--set",
        "seq_len=16",
    )
    import zoo_core

    artifact = zoo_core.load(out)
    assert artifact.config.tokenizer == "bpe"
    assert isinstance(artifact.tokenizer, BPETokenizer) and artifact.tokenizer.vocab_size == 400
    assert artifact.model.config.vocab_size == 400
    assert json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["type"] == "bpe"
    text = artifact.generate(prompt="def ", length=5, seed=0)
    assert isinstance(text, str)
