"""Sequence to sequence: read a source text, write a target text (translation, SCAN).

A model for this task is a :class:`zoo_core.protocols.Seq2SeqModel`: teacher-forced
``forward(source, source_mask, target)`` for training, ``encode`` and ``decode_step`` for
decoding. Ids are the tokenizers' shifted by three: 0 pads, 1 starts a target, 2 ends a source
and a target.

Data: a JSONL file of ``{"source": ..., "target": ...}`` lines, a TSV file of source<TAB>target
lines or a CSV file with the columns ``source`` and ``target``; or a data set read through
``datasets`` (``hf:ORG/NAME``, Parquet, Arrow) with the columns ``source`` and ``target`` or a
translation column and two of its languages. The embedded default is SCAN (Lake & Baroni
2018), regenerated from its grammar, with its splits (``--set split=``); ``--set
corpus=svo-sov`` takes a synthetic translation with long-range reordering instead
(:mod:`zoo_core.data.reorder`).

Metrics: teacher-forced loss and token accuracy, and, of greedy decoding, exact match and
corpus BLEU and chrF through sacrebleu.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sacrebleu
import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import protocols
from zoo_core.data import hf, reorder, scan
from zoo_core.data.pairs import read_pairs
from zoo_core.errors import ZooError, printable
from zoo_core.tasks.base import Task, trained_on
from zoo_core.tokenizers.pair import PairTokenizer

PAD, BOS, EOS = 0, 1, 2
SPECIALS = 3  # the tokenizers' ids start after these

Pairs = list[tuple[str, str]]
# source (B, S), source mask (B, S), target in (B, T) from BOS, target out (B, T) up to EOS
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class Seq2SeqOptions:
    corpus: str = "scan"  # the embedded data when no --data is given: scan, or svo-sov
    split: str = "simple"  # its split: simple, length or addprim-jump (SCAN); simple (svo-sov)
    val_size: int | None = None  # validation pairs scored, evenly spread over them (None: all)
    tokenizer: str = "word"  # the source's tokenizer (`zoo tokenizers`), and the target's
    target_tokenizer: str | None = None  # the target's own kind; default: tokenizer
    share_vocab: bool = False  # one tokenizer fitted on sources and targets together
    vocab_size: int | None = None  # for tokenizers that learn a vocabulary of a chosen size
    max_source_len: int = 256  # tokens of a source read (longer ones are cut)
    max_target_len: int = 256  # tokens of a target trained on, and the longest decoded
    val_fraction: float = 0.1  # held out for validation when no --val-data is given
    label_smoothing: float = 0.0  # of the training loss (the Transformer paper's: 0.1)
    data_split: str = "train"  # of a data set read through `datasets` (hf:ORG/NAME, Parquet, Arrow)
    source_column: str | None = None  # its source texts; default: its column 'source'
    target_column: str | None = None  # its target texts; default: its column 'target'
    source_lang: str | None = None  # or the source's language in its translation column
    target_lang: str | None = None  # and the target's (de, en, ...)


class SequenceToSequence(Task):
    name = "seq2seq"
    pipeline_tag = "translation"
    try_command = "zoo translate {source} 'jump twice and walk left'"
    model_protocol = protocols.Seq2SeqModel
    Options = Seq2SeqOptions
    metric = "val_exact_match"
    lower_is_better = False
    unit = "tokens"

    def load_state(self, state: dict[str, Any]) -> None:
        self.data_name = state.get("data", "")
        self.val_source = state.get("val_data")  # the config's, handed on by build_task

    def state(self) -> dict[str, Any]:
        return {"data": self.data_name}

    # -- data ----------------------------------------------------------------------------------
    def _default(self) -> tuple[Pairs, Pairs]:
        corpus = _CORPORA.get(self.options.corpus)
        if corpus is None:
            raise ZooError(
                f"unknown corpus '{self.options.corpus}'; set corpus to one of "
                f"{', '.join(_CORPORA)} (or give --data)"
            )
        if self.options.split not in corpus.SPLITS:
            raise ZooError(
                f"unknown {self.options.corpus} split '{self.options.split}'; set split to one "
                f"of {', '.join(corpus.SPLITS)}"
            )
        return corpus.split(self.options.split)

    def setup(self, data: str | None, val_data: str | None = None, seed: int = 0) -> None:
        self.val_source = None if val_data is None else str(val_data)
        if data is None:
            train, val = self._default()
            self.data_name = f"{self.options.corpus}-{self.options.split}"
        else:
            if self.options.corpus != Seq2SeqOptions.corpus:
                raise ZooError(
                    "corpus chooses the embedded data, for training without --data; drop "
                    "--set corpus or --data"
                )
            data = hf.pin(data) if hf.is_hub(data) else data
            train, val = self._read(data)
            self.data_name = str(data)
            if val_data is None and val is None:
                train, val = _split(train, self.options.val_fraction)
        if val_data is not None:
            val = self._read(val_data, held_out=False)[0]
        if self.tokenizer is None:
            options = self.options
            self.tokenizer = PairTokenizer.fit_pair(
                [s for s, _ in train],
                [t for _, t in train],
                options.tokenizer,
                options.target_tokenizer or options.tokenizer,
                options.vocab_size,
                options.share_vocab,
            )
        self.train_set = self._encode(train)
        self.val_pairs = val = self._spread(val)
        self.val_set = self._encode(val)

    def _spread(self, pairs: Pairs) -> Pairs:
        """``val_size`` of the pairs, evenly spread over them (all when it is None or more)."""
        n = self.options.val_size
        if n is None:
            return pairs
        if isinstance(n, bool) or n < 1:
            raise ZooError(f"val_size must be at least 1 pair, or unset for all; not {n}")
        if n >= len(pairs):
            return pairs
        return [pairs[i * len(pairs) // n] for i in range(n)]

    def setup_eval(self, data: str | None) -> None:
        """``data``; by default the validation pairs of training (--val-data, held out or the
        SCAN split's test set)."""
        if data is None and self.val_source:
            data = trained_on(self.val_source)
        if data is not None:
            val = self._read(data, held_out=False)[0]
        elif self.data_name == "" or _embedded(self.data_name):
            if self.data_name:
                self.options.corpus, self.options.split = _embedded(self.data_name)
            val = self._default()[1]
        else:
            train, found = self._read(trained_on(self.data_name))
            val = found if found is not None else _split(train, self.options.val_fraction)[1]
        self.val_pairs = val = self._spread(val)
        self.val_set = self._encode(val)

    def _read(self, data: str, held_out: bool = True) -> tuple[Pairs, Pairs | None]:
        """(the pairs of a file, or of split ``data_split`` of a data set read through
        `datasets`; that data set's own validation split, or None)."""
        if not hf.is_table(data):
            return read_pairs(data), None
        o = self.options
        if o.split != Seq2SeqOptions.split:
            raise ZooError(
                f"split chooses SCAN's split, for training without --data; choose the split of "
                f"'{printable(data)}' with --set data_split=NAME"
            )
        data = hf.pin(data) if hf.is_hub(data) else data
        train = self._table(data, hf.open_split(data, o.data_split, option="data_split"))
        found = hf.validation_split(data) if held_out else None
        return train, None if found is None else self._table(data, found[1])

    def _table(self, data: str, dataset: Any) -> Pairs:
        o = self.options
        columns = hf.find_pair_columns(
            dataset, data, o.source_column, o.target_column, o.source_lang, o.target_lang
        )
        return hf.pairs(dataset, columns, data)

    @property
    def _pair(self) -> PairTokenizer:
        if not isinstance(self.tokenizer, PairTokenizer):
            raise ZooError("this task reads and writes through a source-target tokenizer")
        return self.tokenizer

    def encode_source(self, text: str) -> list[int]:
        ids = [i + SPECIALS for i in self._pair.source.encode(text)]
        return ids[: self.options.max_source_len - 1] + [EOS]

    def encode_target(self, text: str) -> list[int]:
        return [i + SPECIALS for i in self._pair.target.encode(text)]

    def decode_target(self, ids: list[int]) -> str:
        return self._pair.target.decode([i - SPECIALS for i in ids if i >= SPECIALS])

    def _encode(self, pairs: Pairs) -> list[tuple[list[int], list[int]]]:
        return [(self.encode_source(s), self.encode_target(t)) for s, t in pairs]

    def model_config(self) -> dict[str, Any]:
        pair = self._pair
        return {
            "source_vocab_size": pair.source.vocab_size + SPECIALS,
            "target_vocab_size": pair.target.vocab_size + SPECIALS,
        }

    def bind(self, model_config: Any) -> None:
        if self.tokenizer is None:
            raise ZooError("this task reads text through a tokenizer, and its config names none")
        for key, needed in self.model_config().items():
            have = getattr(model_config, key, None)
            if have is not None and have < needed:
                raise ZooError(
                    f"the model's {key} {have} is smaller than the tokenizer needs ({needed}); "
                    f"leave {key} to the tokenizer"
                )
        shares = getattr(model_config, "share_embeddings", False)
        if shares and not self._pair.shared:
            raise ZooError(
                "the model shares its source and target embeddings, which needs one vocabulary "
                "for both; set share_vocab=true, or share_embeddings=false"
            )
        for key in ("max_source_len", "max_target_len"):
            if getattr(self.options, key) < 2:
                raise ZooError(f"{key} must be at least 2 tokens, not {getattr(self.options, key)}")
        if not 0 <= self.options.label_smoothing < 1:
            raise ZooError(f"label_smoothing must be in [0, 1), not {self.options.label_smoothing}")

    def _collate(self, rows: list[tuple[list[int], list[int]]]) -> Batch:
        limit = self.options.max_target_len
        S = max(len(s) for s, _ in rows)
        T = max(min(len(t), limit - 1) for _, t in rows) + 1
        source = torch.zeros(len(rows), S, dtype=torch.long)
        target_in = torch.zeros(len(rows), T, dtype=torch.long)
        target_out = torch.zeros(len(rows), T, dtype=torch.long)
        for i, (s, t) in enumerate(rows):
            t = t[: limit - 1]
            source[i, : len(s)] = torch.tensor(s)
            target_in[i, : len(t) + 1] = torch.tensor([BOS, *t])
            target_out[i, : len(t) + 1] = torch.tensor([*t, EOS])
        return source, source != PAD, target_in, target_out  # (B, S), (B, S), (B, T), (B, T)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        pick = torch.randint(len(self.train_set), (batch_size,), generator=generator)
        return self._collate([self.train_set[i] for i in pick.tolist()])

    def units(self, batch: Batch) -> int:
        return int((batch[3] != PAD).sum())  # target tokens

    def describe_data(self) -> str:
        n = len(getattr(self, "train_set", ()))
        return f"{self.data_name} ({n} training pairs)"

    # -- loss and metrics ----------------------------------------------------------------------
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        source, mask, target_in, target_out = batch
        logits = model(source, mask, target_in)  # (B, T, V)
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)),
            target_out.reshape(-1),
            ignore_index=PAD,
            label_smoothing=self.options.label_smoothing,
        )

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, batch_size: int, limit: int | None = None
    ) -> dict[str, float]:
        """Teacher-forced loss and token accuracy; exact match, BLEU and chrF of greedy
        decoding (on ``limit`` batches, evenly spread, when given)."""
        if not hasattr(self, "val_set"):
            self.setup_eval(None)
        order = list(range(len(self.val_set)))
        if limit is not None and limit * batch_size < len(order):
            step = len(order) / (limit * batch_size)
            order = [int(i * step) for i in range(limit * batch_size)]
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        # Decoding stops well past the longest reference, which no longer output could match:
        # an untrained model, which never ends, is not decoded to max_target_len.
        longest = max(len(self.val_set[j][1]) for j in order)
        cap = min(self.options.max_target_len, 2 * longest + 10)
        loss_sum, hits, count = 0.0, 0, 0
        hypotheses: list[str] = []
        references: list[str] = []
        for i in range(0, len(order), batch_size):
            chunk = order[i : i + batch_size]
            source, mask, target_in, target_out = (
                t.to(device) for t in self._collate([self.val_set[j] for j in chunk])
            )
            logits = model(source, mask, target_in).float()
            real = target_out != PAD
            loss_sum += F.cross_entropy(logits[real], target_out[real], reduction="sum").item()
            hits += int((logits.argmax(-1)[real] == target_out[real]).sum())
            count += int(real.sum())
            decoded = greedy(model, source, mask, cap)
            hypotheses += [self.decode_target(ids) for ids in decoded]
            references += [self.decode_target(self.val_set[j][1]) for j in chunk]
        model.train(was_training)
        exact = sum(h == r for h, r in zip(hypotheses, references, strict=True))
        return {
            "val_loss": loss_sum / max(count, 1),
            "val_token_accuracy": hits / max(count, 1),
            "val_exact_match": exact / max(len(references), 1),
            **corpus_scores(hypotheses, references),
        }

    def example_batch(self, model_config: Any, batch_size: int = 2) -> Batch:
        g = torch.Generator().manual_seed(0)
        S, T = 7, 6
        source = torch.randint(
            SPECIALS, model_config.source_vocab_size, (batch_size, S), generator=g
        )
        target = torch.randint(
            SPECIALS, model_config.target_vocab_size, (batch_size, T), generator=g
        )
        source[-1, S // 2 :] = PAD  # the last row is padded
        target_in = torch.cat([torch.full((batch_size, 1), BOS), target[:, :-1]], dim=1)
        target_out = target.clone()
        target_out[-1, T // 2 :] = PAD
        target_in[-1, T // 2 + 1 :] = PAD
        return source, source != PAD, target_in, target_out

    def outputs(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model(batch[0], batch[1], batch[2])

    # -- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def translate(
        self,
        model: nn.Module,
        texts: list[str],
        beam: int = 1,
        length_penalty: float = 0.6,
        max_length: int | None = None,
        use_cache: bool = True,
        batch_size: int = 64,
    ) -> list[str]:
        """The model's target text for each source text: greedy (``beam`` 1) or beam search."""
        if not texts:
            raise ZooError("give at least one text to translate")
        if not all(isinstance(text, str) for text in texts):
            odd = next(type(t).__name__ for t in texts if not isinstance(t, str))
            raise ZooError(f"cannot translate {odd!r} objects: give texts (str)")
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise ZooError(f"the beam must be a whole number, at least 1, not {beam!r}")
        if not 0 <= length_penalty < 10:
            raise ZooError(f"length_penalty must be in [0, 10), not {length_penalty}")
        limit = self.options.max_target_len if max_length is None else max_length
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ZooError(
                f"max_length must be a whole number of tokens, at least 1, not {limit!r}"
            )
        device = next(model.parameters()).device
        model.eval()
        out: list[str] = []
        for i in range(0, len(texts), batch_size):
            rows = [(self.encode_source(t), []) for t in texts[i : i + batch_size]]
            source, mask, _, _ = (t.to(device) for t in self._collate(rows))
            if beam == 1:
                decoded = greedy(model, source, mask, limit, use_cache)
            else:
                decoded = beam_search(model, source, mask, beam, limit, length_penalty, use_cache)
            out += [self.decode_target(ids) for ids in decoded]
        return out


_CORPORA = {"scan": scan, "svo-sov": reorder}  # name -> module with SPLITS and split()


def _embedded(data_name: str) -> tuple[str, str] | None:
    """(corpus, split) of an embedded data set's name (``scan-length``), else None."""
    for corpus, module in _CORPORA.items():
        for split in module.SPLITS:
            if data_name == f"{corpus}-{split}":
                return corpus, split
    return None


# -- decoding ----------------------------------------------------------------------------------
def _map(fn: Callable[[torch.Tensor], torch.Tensor], value: Any) -> Any:
    """``fn`` applied to every tensor of a nested memory or state (batch first)."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple | list):
        return type(value)(_map(fn, v) for v in value)
    if isinstance(value, dict):
        return {k: _map(fn, v) for k, v in value.items()}
    return value


def _stepper(
    model: nn.Module,
    source: torch.Tensor,
    mask: torch.Tensor,
    use_cache: bool,
    rows: torch.Tensor | None = None,
):
    """A function from (the newest target tokens (N, t), all target tokens so far (N, T), the
    state) to (the last position's logits (N, V), the new state), for the sources ``rows``
    picks (each repeated for a beam; all of them once when None)."""
    if rows is not None:
        source, mask = source[rows], mask[rows]  # (N, S)
    if use_cache:
        memory = model.encode(source, mask)  # read once

        def cached(new, everything, state):
            logits, state = model.decode_step(new, memory, mask, state)
            return logits[:, -1], state

        return cached

    def uncached(new, everything, state):  # the whole prefix again, every token
        return model(source, mask, everything)[:, -1], None

    return uncached


def greedy(
    model: nn.Module,
    source: torch.Tensor,
    mask: torch.Tensor,
    max_length: int,
    use_cache: bool = True,
) -> list[list[int]]:
    """The likeliest token at each step until EOS or ``max_length`` tokens: ids without EOS."""
    B = source.size(0)
    step = _stepper(model, source, mask, use_cache)
    target = torch.full((B, 1), BOS, dtype=torch.long, device=source.device)  # (B, 1)
    done = torch.zeros(B, dtype=torch.bool, device=source.device)
    state = None
    for _ in range(max_length):
        logits, state = step(target[:, -1:], target, state)  # (B, V)
        token = logits.argmax(-1).masked_fill(done, PAD)
        target = torch.cat([target, token[:, None]], dim=1)
        done |= token == EOS
        if done.all():
            break
    return [_until_eos(row[1:].tolist()) for row in target]


def _until_eos(ids: list[int]) -> list[int]:
    return ids[: ids.index(EOS)] if EOS in ids else [i for i in ids if i != PAD]


def beam_search(
    model: nn.Module,
    source: torch.Tensor,
    mask: torch.Tensor,
    beam: int,
    max_length: int,
    length_penalty: float = 0.6,
    use_cache: bool = True,
) -> list[list[int]]:
    """The best of ``beam`` hypotheses of each source, by log-probability over GNMT's length
    penalty ((5 + length) / 6) ** length_penalty; a hypothesis ends at EOS, and each source's
    search once ``beam`` of its hypotheses have ended (or at ``max_length`` tokens)."""
    B, device = source.size(0), source.device
    rows = torch.arange(B, device=device).repeat_interleave(beam)  # (B*K,): the source of each
    step = _stepper(model, source, mask, use_cache, rows)
    target = torch.full((B * beam, 1), BOS, dtype=torch.long, device=device)  # (B*K, 1)
    scores = torch.full((B, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis to start with: the others are its copies
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]

    def penalised(score: float, length: int) -> float:
        return score / (((5 + length) / 6) ** length_penalty)

    state = None
    for _ in range(max_length):
        logits, state = step(target[:, -1:], target, state)  # (B*K, V)
        logp = F.log_softmax(logits.float(), dim=-1).view(B, beam, -1)  # (B, K, V)
        V = logp.size(-1)
        candidates = (scores[:, :, None] + logp).view(B, -1)  # (B, K*V)
        top, index = candidates.topk(2 * beam, dim=-1)  # (B, 2K): room for K that go on
        origin, token = index // V, index % V
        new_scores = torch.full((B, beam), float("-inf"), device=device)
        pick = torch.zeros(B, beam, dtype=torch.long, device=device)
        new_tokens = torch.full((B, beam), PAD, dtype=torch.long, device=device)
        for b in range(B):
            if len(finished[b]) >= beam:
                continue
            kept = 0
            for j in range(2 * beam):
                score = top[b, j].item()
                if score == float("-inf"):
                    break
                k, tok = origin[b, j].item(), token[b, j].item()
                if tok == EOS:
                    if j < beam:  # an ending among the best K
                        ids = target[b * beam + k, 1:].tolist()
                        finished[b].append((penalised(score, len(ids) + 1), ids))
                    continue
                new_scores[b, kept], pick[b, kept], new_tokens[b, kept] = score, k, tok
                kept += 1
                if kept == beam:
                    break
        if all(len(f) >= beam for f in finished):
            break
        chosen = (torch.arange(B, device=device)[:, None] * beam + pick).view(-1)  # (B*K,)
        target = torch.cat([target[chosen], new_tokens.view(-1, 1)], dim=1)
        state = _map(lambda x, chosen=chosen: x[chosen], state)
        scores = new_scores
    best = []
    for b in range(B):
        pool = finished[b] or [
            (penalised(scores[b, k].item(), target.size(1) - 1), target[b * beam + k, 1:].tolist())
            for k in range(beam)
            if scores[b, k] > float("-inf")
        ]
        best.append(max(pool, key=lambda p: p[0])[1])
    return best


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU and chrF of ``hypotheses`` against one reference each, by sacrebleu."""
    return {
        "val_bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
        "val_chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
    }


def _split(pairs: Pairs, val_fraction: float) -> tuple[Pairs, Pairs]:
    """A seeded shuffle, then ``val_fraction`` of the pairs held out (at least one each)."""
    if not 0 < val_fraction < 1:
        raise ZooError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    if len(pairs) < 2:
        raise ZooError(f"the data has {len(pairs)} pair; give at least two, or --val-data")
    shuffled = list(pairs)
    random.Random(0).shuffle(shuffled)
    n_val = min(len(pairs) - 1, max(1, round(len(pairs) * val_fraction)))
    return shuffled[n_val:], shuffled[:n_val]
