from zoo_core import create_model
from zoo_core.data.text import default_text
from zoo_core.tokenizers.base import Tokenizer
from zoo_core.tokenizers.simple import ByteTokenizer, CharTokenizer

UNICODE = "naïve café — 東京 🦒\n"


def test_char_round_trip_on_the_default_text(tmp_path):
    text = default_text()
    tok = CharTokenizer.fit(text)
    assert tok.decode(tok.encode(text)) == text
    tok.save(tmp_path / "tokenizer.json")
    again = CharTokenizer.load(tmp_path / "tokenizer.json")
    assert again.encode(text[:1000]) == tok.encode(text[:1000])
    assert again.vocab_size == tok.vocab_size == len(set(text)) + 1


def test_char_maps_unseen_characters_to_unknown():
    tok = CharTokenizer.fit("abc")
    ids = tok.encode("abz")
    assert ids[2] == 0 and ids[:2] == tok.encode("ab")
    assert tok.decode(ids) == "ab\ufffd"


def test_byte_round_trip_on_unicode():
    tok = ByteTokenizer()
    assert tok.vocab_size == 256
    assert tok.decode(tok.encode(UNICODE)) == UNICODE
    assert len(tok.encode("é")) == 2


def test_a_vocab_size_for_a_fixed_vocabulary_is_refused_not_ignored(zoo, tmp_path):
    for tokenizer in ("char", "byte"):
        proc = zoo(
            "train", "lstm", "--tokenizer", tokenizer, "--set", "vocab_size=50", "--steps", "1",
            cwd=tmp_path, check=False,
        )  # fmt: skip
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert f"the {tokenizer} tokenizer's vocabulary is" in proc.stderr
        assert "takes no vocab_size" in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


class Words(Tokenizer):
    """Words split on spaces and joined with one: decoding puts the spaces between tokens."""

    name = "test-words"

    def __init__(self, words):
        self.words = words

    @property
    def vocab_size(self):
        return len(self.words)

    def encode(self, text):
        return [self.words.index(w) for w in text.split()]

    def decode(self, ids):
        return " ".join(self.words[i] for i in ids)


def test_generated_text_continues_the_prompt_as_the_tokenizer_joins_tokens():
    from zoo_core.tasks.lm import LanguageModeling, LMOptions

    tokenizer = Words(["the", "cat", "sat", "on", "a", "mat"])
    task = LanguageModeling(LMOptions(), tokenizer=tokenizer)
    model = create_model("lstm", vocab_size=tokenizer.vocab_size, hidden_size=8, embed_dim=8)
    new = task.generate(model, "the cat", length=5, seed=0)
    assert new.startswith(" ") and len(new.split()) == 5  # " sat on ...", not "saton ..."
    full = tokenizer.decode(tokenizer.encode("the cat" + new))
    assert full == "the cat" + new  # the prompt and what followed, as one text
    pieces = list(task.stream(model, "the cat", length=5, seed=0))
    assert "".join(pieces) == new and len(pieces) == 5
