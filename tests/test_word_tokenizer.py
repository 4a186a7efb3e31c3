"""The built-in `word` tokenizer: one token per whitespace-separated word."""

import pytest

import zoo_core
from zoo_core.errors import ZooError
from zoo_core.tokenizers.base import tokenizer_class
from zoo_core.tokenizers.word import WordTokenizer

TEXT = "jump twice and walk left\njump thrice after run\n"


def test_it_is_built_in():
    (spec,) = [s for s in zoo_core.list_tokenizers() if s.name == "word"]
    assert spec.plugin == "builtin-tokenizers"
    assert tokenizer_class("word") is WordTokenizer


def test_words_round_trip_and_unknown_words_have_id_0():
    tok = WordTokenizer.fit(TEXT)
    assert tok.vocab_size == 9  # eight distinct words and the unknown id
    assert tok.words[0] == "jump"  # the most frequent first
    ids = tok.encode("walk left twice")
    assert tok.decode(ids) == "walk left twice" and 0 not in ids
    assert tok.encode("crawl jump") == [0, tok.encode("jump")[0]]
    assert tok.decode(tok.encode("crawl jump")) == "<unk> jump"


def test_vocab_size_keeps_the_most_frequent_words():
    tok = WordTokenizer.fit(TEXT, vocab_size=3)
    assert tok.words == ["jump", "after"]  # jump twice; the rest once each, by the word
    with pytest.raises(ZooError, match="at least 2"):
        WordTokenizer.fit(TEXT, vocab_size=1)
    with pytest.raises(ZooError, match="no words"):
        WordTokenizer.fit("  \n ")


def test_saved_and_loaded_like_any_tokenizer(tmp_path):
    tok = WordTokenizer.fit(TEXT)
    tok.save(tmp_path / "tokenizer.json")
    again = WordTokenizer.load(tmp_path / "tokenizer.json")
    assert again.words == tok.words
    (tmp_path / "bad.json").write_text('{"type": "word", "words": [1, 2]}')
    with pytest.raises(ZooError, match="not a valid word tokenizer"):
        WordTokenizer.load(tmp_path / "bad.json")


def test_a_language_model_trains_and_generates_words(tmp_path):
    data = tmp_path / "words.txt"
    data.write_text(TEXT * 40)
    artifact, metrics = zoo_core.train(
        "transformer",
        data=data,
        out=tmp_path / "run",
        steps=3,
        batch_size=2,
        progress=False,
        overrides={"tokenizer": "word", "seq_len": 8, "n_layer": 1, "n_embd": 16, "n_head": 2},
    )
    assert artifact.config.tokenizer == "word" and artifact.model.config.vocab_size == 9
    loaded = zoo_core.load(tmp_path / "run")
    text = loaded.generate("jump", length=5, seed=0)
    assert len(text.split()) == 5 and set(text.split()) <= set(TEXT.split()) | {"<unk>"}
