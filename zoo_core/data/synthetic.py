"""Seeded generators of synthetic sequence tasks that need a model to reach far back.

Every generator returns ``(seq, answer)``: ids ``(N, S)`` and a bool mask ``(N, S)`` that is True
on the answer tokens, the ones a model must produce. The same ``torch.Generator`` state gives the
same examples. A model reads ``seq[:, :-1]`` and predicts ``seq[:, 1:]``; only the answer
positions are scored.

Ids below :data:`FIRST_SYMBOL` are reserved; the ``symbols`` data symbols follow them:

- ``BLANK`` fills the gap of ``copy``'s delay;
- ``SEP`` separates the question from the answer (the delimiter, or the query marker);
- ``NOISE`` is the filler of ``selective-copy``.
"""

from __future__ import annotations

import torch

BLANK, SEP, NOISE = 0, 1, 2
FIRST_SYMBOL = 3


def _symbols(shape: tuple[int, ...], symbols: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(symbols, shape, generator=generator) + FIRST_SYMBOL


def _distinct(n: int, k: int, universe: int, generator: torch.Generator) -> torch.Tensor:
    """``k`` distinct values of ``range(universe)`` per row, in random order, (n, k)."""
    return torch.rand(n, universe, generator=generator).argsort(dim=1)[:, :k]


def _answer_mask(n: int, total: int, answer: int) -> torch.Tensor:
    mask = torch.zeros(n, total, dtype=torch.bool)
    mask[:, total - answer :] = True
    return mask


def copy(n: int, length: int, symbols: int, generator: torch.Generator, delay: int = 0):
    """``a1..aL [BLANK x delay] SEP a1..aL``: reproduce the sequence after the delimiter."""
    data = _symbols((n, length), symbols, generator)  # (N, L)
    gap = torch.full((n, delay), BLANK, dtype=torch.long)
    sep = torch.full((n, 1), SEP, dtype=torch.long)
    seq = torch.cat([data, gap, sep, data], dim=1)  # (N, 2L + delay + 1)
    return seq, _answer_mask(n, seq.size(1), length)


def selective_copy(
    n: int, length: int, symbols: int, generator: torch.Generator, num_marked: int = 4
):
    """``length`` positions of NOISE holding ``num_marked`` symbols at random places, SEP, then
    those symbols in order: the model must pick them out from among the noise."""
    places = _distinct(n, num_marked, length, generator).sort(dim=1).values  # (N, M)
    region = torch.full((n, length), NOISE, dtype=torch.long)
    marked = _symbols((n, num_marked), symbols, generator)  # (N, M)
    region.scatter_(1, places, marked)
    sep = torch.full((n, 1), SEP, dtype=torch.long)
    seq = torch.cat([region, sep, marked], dim=1)  # (N, L + 1 + M)
    return seq, _answer_mask(n, seq.size(1), num_marked)


def associative_recall(n: int, length: int, symbols: int, generator: torch.Generator):
    """``k1 v1 .. kL vL SEP k v``: ``length`` pairs with distinct keys, then a query key; the
    answer is its value."""
    keys = _distinct(n, length, symbols, generator) + FIRST_SYMBOL  # (N, L)
    values = _symbols((n, length), symbols, generator)  # (N, L)
    pairs = torch.stack([keys, values], dim=2).view(n, 2 * length)  # (N, 2L)
    which = torch.randint(length, (n, 1), generator=generator)  # (N, 1)
    query = torch.cat(
        [torch.full((n, 1), SEP, dtype=torch.long), keys.gather(1, which), values.gather(1, which)],
        dim=1,
    )
    seq = torch.cat([pairs, query], dim=1)  # (N, 2L + 3)
    return seq, _answer_mask(n, seq.size(1), 1)


def parity(n: int, length: int, symbols: int, generator: torch.Generator):
    """``b1..bL SEP p``: bits (the first two symbols), then whether the count of ones is odd."""
    bits = torch.randint(2, (n, length), generator=generator)  # (N, L)
    odd = bits.sum(dim=1, keepdim=True) % 2  # (N, 1)
    sep = torch.full((n, 1), SEP, dtype=torch.long)
    seq = torch.cat([bits + FIRST_SYMBOL, sep, odd + FIRST_SYMBOL], dim=1)  # (N, L + 2)
    return seq, _answer_mask(n, seq.size(1), 1)


def induction(n: int, length: int, symbols: int, generator: torch.Generator):
    """``length`` random symbols in which a query symbol q occurs exactly once, followed by some
    b; then q again: the answer is b, the token that followed q's earlier occurrence."""
    q = torch.randint(symbols, (n, 1), generator=generator)  # (N, 1), the query symbol
    body = torch.randint(symbols - 1, (n, length), generator=generator)
    body = body + (body >= q).long()  # (N, L), every symbol but q
    where = torch.randint(length - 1, (n, 1), generator=generator)  # q at `where`, b after it
    body.scatter_(1, where, q)
    answer = body.gather(1, where + 1)  # (N, 1)
    seq = torch.cat([body, q, answer], dim=1) + FIRST_SYMBOL  # (N, L + 2)
    return seq, _answer_mask(n, seq.size(1), 1)


def mqar(n: int, pairs: int, symbols: int, generator: torch.Generator):
    """Multi-query associative recall (Arora et al. 2023, Zoology): ``k1 v1 .. kP vP SEP`` then
    every key again, in another order, each followed by its value. Keys (distinct) come from the
    first half of the symbols, values from the second; every value after a query is an answer."""
    half = symbols // 2
    keys = _distinct(n, pairs, half, generator) + FIRST_SYMBOL  # (N, P)
    values = torch.randint(symbols - half, (n, pairs), generator=generator) + half + FIRST_SYMBOL
    order = torch.rand(n, pairs, generator=generator).argsort(dim=1)  # (N, P): query order
    context = torch.stack([keys, values], dim=2).view(n, 2 * pairs)  # (N, 2P)
    queries = torch.stack([keys.gather(1, order), values.gather(1, order)], dim=2)
    sep = torch.full((n, 1), SEP, dtype=torch.long)
    seq = torch.cat([context, sep, queries.view(n, 2 * pairs)], dim=1)  # (N, 4P + 1)
    mask = torch.zeros_like(seq, dtype=torch.bool)
    mask[:, 2 * pairs + 2 :: 2] = True  # the value after each query key
    return seq, mask


def repeated_tokens(n: int, length: int, symbols: int, generator: torch.Generator):
    """``a1..aL a1..aL``: ``length`` distinct random symbols, then the same again (Olsson et al.
    2022). Every repeated token after the first is an answer: a model that finds the earlier
    occurrence of the current token and copies what followed it (an induction head) gets all."""
    data = _distinct(n, length, symbols, generator) + FIRST_SYMBOL  # (N, L)
    seq = torch.cat([data, data], dim=1)  # (N, 2L)
    mask = torch.zeros_like(seq, dtype=torch.bool)
    mask[:, length + 1 :] = True  # a2..aL of the repeat; a1 cannot be foreseen
    return seq, mask
