"""A synthetic translation with long-range reordering and agreement: English-like SVO sentences
into a verb-final (SOV), head-final language of the zoo's own, whose verb agrees in number with
its subject.

Source (subject, verb, object; modifiers follow their noun, prepositions precede theirs)::

    S  -> NP V NP
    NP -> the [A] N [P NP | that V NP]    (phrases and clauses nest up to three deep)

Target (subject, object, verb; everything that modifies a noun comes before it, a postposition
after its noun, a relative clause verb-final before its noun, the subject marked ``ga``, an
object ``o``; the verb last, then ``sg`` or ``pl`` as the subject's number)::

    the big dog near the cats saw a fox   ->  neko tachi chikaku ookii inu ga kitsune o mita sg
    the fox that chased some birds saw a dog  ->  tori tachi o oikaketa kitsune ga inu o mita sg

Three things a model has to do that SCAN does not ask: move each verb past its whole object,
reverse a chain of phrases and clauses (``the dog near the cat behind the fox`` becomes
``kitsune ushiro neko chikaku inu``), and carry the subject's number over everything after it
to the end of the sentence, where the source marks it on no verb (the verbs are past tense,
which English does not inflect for number). Sentences run to 35 words. Every noun phrase has
at most one modifier after its noun, so a source parses one way only: the translation is a
function.

Sentences are drawn at random with a fixed seed, 20,000 distinct ones, and split 80/20 at random
(``simple``): 16,000 to train on, 4,000 to test.
"""

from __future__ import annotations

import functools
import random

from zoo_core.errors import ZooError

SPLITS = ("simple",)
SIZE = 20_000
_TRAIN_FRACTION = 0.8
_MAX_DEPTH = 3  # phrases and clauses inside a noun phrase, nested
_P_ADJECTIVE = 0.5
_P_PHRASE = 0.4  # of a prepositional phrase after a noun (above the deepest level)
_P_CLAUSE = 0.25  # of a relative clause after it instead

# source word (singular, plural) -> target word
_NOUNS = {
    ("dog", "dogs"): "inu",
    ("cat", "cats"): "neko",
    ("bird", "birds"): "tori",
    ("fox", "foxes"): "kitsune",
    ("horse", "horses"): "uma",
    ("fish", "fishes"): "sakana",
    ("bear", "bears"): "kuma",
    ("rabbit", "rabbits"): "usagi",
    ("child", "children"): "kodomo",
    ("teacher", "teachers"): "sensei",
}
_PLURAL = "tachi"
_ADJECTIVES = {
    "big": "ookii",
    "small": "chiisai",
    "red": "akai",
    "old": "furui",
    "young": "wakai",
    "happy": "ureshii",
    "quick": "hayai",
    "lazy": "namake",
}
_PREPOSITIONS = {"near": "chikaku", "behind": "ushiro", "with": "to", "under": "shita"}
_VERBS = {
    "saw": "mita",
    "chased": "oikaketa",
    "liked": "kononda",
    "helped": "tasuketa",
    "followed": "tsuiteitta",
    "heard": "kiita",
    "found": "mitsuketa",
    "pushed": "oshita",
}
_DETERMINERS = {False: ("the", "a"), True: ("the", "some")}  # the target has no articles


def _noun_phrase(rng: random.Random, depth: int) -> tuple[list[str], list[str], bool]:
    """(source words, target words, plural) of one noun phrase."""
    (singular, plural), noun = rng.choice(list(_NOUNS.items()))
    many = rng.random() < 0.5
    source = [rng.choice(_DETERMINERS[many])]
    adjective = rng.choice(list(_ADJECTIVES)) if rng.random() < _P_ADJECTIVE else None
    if adjective:
        source.append(adjective)
    source.append(plural if many else singular)
    target = [_ADJECTIVES[adjective]] if adjective else []
    target += [noun] + ([_PLURAL] if many else [])
    attach = rng.random() if depth < _MAX_DEPTH else 1.0
    if attach < _P_PHRASE:  # a prepositional phrase: its noun phrase, then the postposition
        preposition = rng.choice(list(_PREPOSITIONS))
        inner_source, inner_target, _ = _noun_phrase(rng, depth + 1)
        source += [preposition, *inner_source]
        target = [*inner_target, _PREPOSITIONS[preposition], *target]  # head-final
    elif attach < _P_PHRASE + _P_CLAUSE:  # a relative clause: its object, o, its verb
        verb = rng.choice(list(_VERBS))
        inner_source, inner_target, _ = _noun_phrase(rng, depth + 1)
        source += ["that", verb, *inner_source]
        target = [*inner_target, "o", _VERBS[verb], *target]
    return source, target, many


def _sentence(rng: random.Random) -> tuple[str, str]:
    subject_s, subject_t, many = _noun_phrase(rng, 0)
    object_s, object_t, _ = _noun_phrase(rng, 0)
    verb = rng.choice(list(_VERBS))
    source = [*subject_s, verb, *object_s]
    target = [*subject_t, "ga", *object_t, "o", _VERBS[verb], "pl" if many else "sg"]
    return " ".join(source), " ".join(target)


@functools.cache
def sentences(seed: int = 0) -> tuple[tuple[str, str], ...]:
    """:data:`SIZE` distinct (source, target) pairs, drawn with ``seed``."""
    rng = random.Random(seed)
    pairs: dict[str, str] = {}
    while len(pairs) < SIZE:
        source, target = _sentence(rng)
        pairs.setdefault(source, target)
    return tuple(pairs.items())


def split(name: str, seed: int = 0) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The (train, test) lists of (source, target) of split ``name``, one of :data:`SPLITS`."""
    if name not in SPLITS:
        raise ZooError(
            f"unknown split '{name}' of the svo-sov data; the known splits are {', '.join(SPLITS)}"
        )
    pairs = list(sentences(seed))
    n_train = round(_TRAIN_FRACTION * len(pairs))
    return pairs[:n_train], pairs[n_train:]  # drawn at random already: the split is too
