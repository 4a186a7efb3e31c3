"""The svo-sov translation: its size and split, and every pair checked against a translator
written here from the grammar in the module's docstring (parse the source, rebuild the target)."""

from __future__ import annotations

import pytest

import zoo_core
from zoo_core.data import reorder
from zoo_core.errors import ZooError
from zoo_core.tasks.seq2seq import Seq2SeqOptions, SequenceToSequence

NOUNS = {
    "dog": "inu",
    "cat": "neko",
    "bird": "tori",
    "fox": "kitsune",
    "horse": "uma",
    "fish": "sakana",
    "bear": "kuma",
    "rabbit": "usagi",
    "child": "kodomo",
    "teacher": "sensei",
}
PLURALS = {"dogs": "dog", "cats": "cat", "birds": "bird", "foxes": "fox", "horses": "horse"}
PLURALS |= {"fishes": "fish", "bears": "bear", "rabbits": "rabbit", "children": "child"}
PLURALS |= {"teachers": "teacher"}
ADJECTIVES = {"big": "ookii", "small": "chiisai", "red": "akai", "old": "furui"}
ADJECTIVES |= {"young": "wakai", "happy": "ureshii", "quick": "hayai", "lazy": "namake"}
PREPOSITIONS = {"near": "chikaku", "behind": "ushiro", "with": "to", "under": "shita"}
VERBS = {"saw": "mita", "chased": "oikaketa", "liked": "kononda", "helped": "tasuketa"}
VERBS |= {"followed": "tsuiteitta", "heard": "kiita", "found": "mitsuketa", "pushed": "oshita"}


def _noun_phrase(words: list[str], at: int, depth: int = 0) -> tuple[list[str], bool, int]:
    """Parse ``the [A] N [P NP]`` from ``words[at]``: (its translation, plural, next index)."""
    assert words[at] in ("the", "a", "some"), words
    at += 1
    adjective = []
    if words[at] in ADJECTIVES:
        adjective = [ADJECTIVES[words[at]]]
        at += 1
    plural = words[at] in PLURALS
    assert words[at - 1 - len(adjective)] != "a" or not plural, "a + plural"
    assert words[at - 1 - len(adjective)] != "some" or plural, "some + singular"
    noun = NOUNS[PLURALS.get(words[at], words[at])]
    at += 1
    target = adjective + [noun] + (["tachi"] if plural else [])
    if at < len(words) and words[at] in PREPOSITIONS:
        assert depth < 3, "nested deeper than three"
        inner, _, at_next = _noun_phrase(words, at + 1, depth + 1)
        target = inner + [PREPOSITIONS[words[at]]] + target
        at = at_next
    elif at < len(words) and words[at] == "that":  # that V NP: NP o V, before the noun
        assert depth < 3, "nested deeper than three"
        inner, _, at_next = _noun_phrase(words, at + 2, depth + 1)
        target = inner + ["o", VERBS[words[at + 1]]] + target
        at = at_next
    return target, plural, at


def translate(source: str) -> str:
    words = source.split()
    subject, plural, at = _noun_phrase(words, 0)
    verb = VERBS[words[at]]
    obj, _, end = _noun_phrase(words, at + 1)
    assert end == len(words), source
    return " ".join(subject + ["ga"] + obj + ["o", verb, "pl" if plural else "sg"])


def test_hand_checked_examples():
    assert translate("the big dog near the cats saw a fox") == (
        "neko tachi chikaku ookii inu ga kitsune o mita sg"
    )
    # a chain of phrases is reversed; the subject's number reaches the end
    assert translate("some dogs near the cat behind a fox heard the bird") == (
        "kitsune ushiro neko chikaku inu tachi ga tori o kiita pl"
    )
    # a relative clause is verb-final too, and comes before its noun
    assert translate("the fox that chased some birds saw a dog") == (
        "tori tachi o oikaketa kitsune ga inu o mita sg"
    )


def test_every_pair_follows_the_grammar():
    pairs = reorder.sentences()
    assert len(pairs) == reorder.SIZE == 20_000
    assert len({s for s, _ in pairs}) == 20_000  # distinct sources
    for source, target in pairs:
        assert target == translate(source), source
    # The draw covers what the study needs: plural and singular subjects, phrases and clauses
    # nested three deep in the subject and in the object, sentences of over 30 words.
    assert {t.split()[-1] for _, t in pairs} == {"sg", "pl"}
    nested = {sum(w in PREPOSITIONS or w == "that" for w in s.split()) for s, _ in pairs}
    assert max(nested) == 6
    assert any(s.split().count("that") >= 3 for s, _ in pairs)
    assert max(len(t.split()) for _, t in pairs) > 30


def test_the_split_is_80_20_and_fixed():
    train, test = reorder.split("simple")
    assert (len(train), len(test)) == (16_000, 4_000)
    assert not {s for s, _ in train} & {s for s, _ in test}
    assert reorder.split("simple") == (train, test)
    with pytest.raises(ZooError, match="known splits are simple"):
        reorder.split("length")


def test_the_task_trains_on_it_and_evaluates_on_the_same_sentences():
    task = SequenceToSequence(Seq2SeqOptions(corpus="svo-sov"))
    task.setup(None)
    assert task.data_name == "svo-sov-simple"
    assert len(task.train_set) == 16_000 and task.val_pairs == reorder.split("simple")[1]
    # A run read back (`zoo eval RUN`): its state names the data, the options are the defaults.
    again = SequenceToSequence(Seq2SeqOptions())
    again.tokenizer = task.tokenizer
    again.load_state(task.state())
    again.setup_eval(None)
    assert again.options.corpus == "svo-sov" and again.val_pairs == task.val_pairs
    assert again.val_set == task.val_set


def test_an_unknown_corpus_or_split_is_one_line(tmp_path):
    for overrides, message in (
        ({"corpus": "wmt"}, "set corpus to one of scan, svo-sov"),
        ({"corpus": "svo-sov", "split": "length"}, "set split to one of simple"),
    ):
        with pytest.raises(ZooError, match=message) as raised:
            zoo_core.train(
                "transformer-seq2seq",
                out=tmp_path / "bad",
                steps=1,
                progress=False,
                overrides=overrides,
            )
        assert "\n" not in str(raised.value)
        assert not (tmp_path / "bad").exists()


def test_val_size_scores_pairs_spread_evenly_over_the_test_set():
    full = reorder.split("simple")[1]
    task = SequenceToSequence(Seq2SeqOptions(corpus="svo-sov", val_size=100))
    task.setup(None)
    assert task.val_pairs == full[::40] and len(task.val_set) == 100
    again = SequenceToSequence(Seq2SeqOptions(val_size=100))
    again.tokenizer = task.tokenizer
    again.load_state(task.state())
    again.setup_eval(None)
    assert again.val_pairs == task.val_pairs
    with pytest.raises(ZooError, match="val_size must be at least 1"):
        SequenceToSequence(Seq2SeqOptions(corpus="svo-sov", val_size=0)).setup(None)


def test_a_corpus_beside_data_is_one_line(tmp_path):
    data = tmp_path / "pairs.tsv"
    data.write_text("jump\tJUMP\nwalk\tWALK\nrun\tRUN\n", encoding="utf-8")
    with pytest.raises(ZooError, match="drop --set corpus or --data"):
        SequenceToSequence(Seq2SeqOptions(corpus="svo-sov")).setup(str(data))
