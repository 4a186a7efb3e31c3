"""Language modelling: predict the next token of a text.

A model for this task maps ids ``(B, T)`` to logits ``(B, T, vocab_size)``. It may also offer
``forward_step(ids, state) -> (logits, state)``, which continues from a state (an LSTM's hidden
state, a Transformer's key/value cache) so generation never recomputes the prefix, and a
``max_context`` attribute when it cannot read beyond a length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import protocols
from zoo_core.data import hf, tokens
from zoo_core.data import text as text_data
from zoo_core.errors import ZooError
from zoo_core.inference import SamplingOptions
from zoo_core.tasks.base import Task, trained_on
from zoo_core.tokenizers.base import fit_tokenizer


@dataclass
class LMOptions:
    tokenizer: str = "char"  # a registered tokenizer (`zoo tokenizers`)
    seq_len: int | None = None  # training window; default: the model's context_length, else 128
    val_fraction: float = 0.1  # the last part of the text, held out for validation
    vocab_size: int | None = None  # for tokenizers that learn a vocabulary of a chosen size
    train_fraction: float = 1.0  # train on this leading part of the training split only
    split: str = "train"  # of a data set read through `datasets` (hf:ORG/NAME, Parquet, Arrow)
    text_column: str | None = None  # its column of text; default: its one string column
    streaming: bool = False  # stream a Hub data set into the token map, never all on disk


def logits_of(model: nn.Module, ids: torch.Tensor, option: str) -> torch.Tensor:
    """``model(ids)``: logits ``(B, T, V)`` for ids ``(B, T)``, or one line on why not: the ids
    are longer than the model's ``max_context`` (``option`` sets their length), or the model
    returns another shape."""
    context = protocols.max_context(model)
    if context is not None and ids.size(1) > context:
        raise ZooError(
            f"the model reads at most {context} tokens and was given {ids.size(1)}; set a "
            f"smaller {option}"
        )
    logits = model(ids)
    if logits.dim() != 3 or logits.shape[:2] != ids.shape:
        raise ZooError(
            f"the model returned logits of shape {tuple(logits.shape)} for ids of shape "
            f"{tuple(ids.shape)}; a language model returns (batch, length, vocab_size)"
        )
    return logits


class LanguageModeling(Task):
    name = "lm"
    pipeline_tag = "text-generation"
    try_command = "zoo generate {source} --prompt 'The '"
    model_protocol = protocols.LanguageModel
    length_option = "seq_len"
    Options = LMOptions
    unit = "tokens"
    generate_options = SamplingOptions  # what Artifact.generate hands to stream()

    def load_state(self, state: dict[str, Any]) -> None:
        self.data_name = state.get("data", "")
        self.val_source = state.get("val_data")  # the config's, handed on by build_task
        if state.get("seq_len"):
            self.options.seq_len = state["seq_len"]

    def state(self) -> dict[str, Any]:
        return {"data": self.data_name, "seq_len": self.options.seq_len}

    # -- data ----------------------------------------------------------------------------------
    def setup(self, data: str | None, val_data: str | None = None, seed: int = 0) -> None:
        """Tokenize the data into token maps (``zoo_core.data.tokens``), once: later runs, resumed
        runs and the other ``--nproc`` ranks read the same files."""
        if not 0 < self.options.train_fraction <= 1:
            raise ZooError(f"train_fraction must be in (0, 1], not {self.options.train_fraction}")
        source, val_split = self._sources(data)
        self.data_name = source.name
        self.val_source = None if val_data is None else str(val_data)
        if val_data is not None:
            val_split = self._source(val_data)
        if val_split is None:
            train, val = self._held_out(source, fit=True)
        else:
            if self.tokenizer is None:
                self.tokenizer = fit_tokenizer(
                    self.options.tokenizer, self.options.vocab_size, source.pieces()
                )
            (train,) = self._maps(source)
            (val,) = self._maps(val_split)
        self._train_map = train
        self._keep = len(train.ids)
        if self.options.train_fraction < 1:  # the tokenizer still saw the whole split
            self._keep = max(1, round(len(train.ids) * self.options.train_fraction))
        self.train_ids = train.ids[: self._keep]
        self._val_map = val
        self.val_ids, self.val_chars = val.ids, val.chars

    def setup_eval(self, data: str | None) -> None:
        """``data``; by default the validation text of training (its --val-data, the data set's
        validation split, or the held-out end)."""
        if data is None and self.val_source:
            data = trained_on(self.val_source)
        if data is not None:
            (val,) = self._maps(self._source(data))
        else:
            trained = self.data_name
            if trained not in ("", text_data.DEFAULT_TEXT_NAME):
                trained = trained_on(trained)
            source, val_split = self._sources(trained or None)
            if val_split is not None:
                (val,) = self._maps(val_split)
            else:
                _, val = self._held_out(source, fit=False)
        self._val_map = val
        self.val_ids, self.val_chars = val.ids, val.chars

    def _sources(
        self, data: str | None
    ) -> tuple[text_data.TextSource, text_data.TextSource | None]:
        """The training text, and a data set's own validation (or test) split if it has one."""
        if data is None or data == text_data.DEFAULT_TEXT_NAME:
            return text_data.text_source(None), None
        source = self._source(data)
        if not hf.is_table(data):
            return source, None
        found = hf.validation_split(source.name, self.options.streaming)
        if found is None:
            return source, None
        return source, self._table_text(source.name, *found)

    def _source(self, data: str | None) -> text_data.TextSource:
        """A text file or folder, or a data set's text column (``split``); a Hub data set is
        pinned to a commit first."""
        if not hf.is_table(data):
            return text_data.text_source(data)
        if hf.is_hub(data):
            data = hf.pin(data)
        split = self.options.split
        return self._table_text(data, split, hf.open_split(data, split, self.options.streaming))

    def _table_text(self, data: str, split: str, dataset: Any) -> text_data.TextSource:
        column = hf.find_column(dataset, "text", self.options.text_column, "text_column", data)
        return text_data.TextSource(
            data, hf.key_of(data, split, column), lambda: hf.texts(dataset, column)
        )

    def _maps(self, source: text_data.TextSource, cut: Any = None) -> list[tokens.TokenMap]:
        key = tokens.key_of({"text": source.key, "held_out": self.options.val_fraction})
        if cut is None:
            key = tokens.key_of({"text": source.key})
        return tokens.token_maps(key, source.pieces, self.tokenizer, cut, source.name)

    def _held_out(self, source: text_data.TextSource, fit: bool) -> list[tokens.TokenMap]:
        """The training part and the held-out last ``val_fraction`` (of the characters)."""
        fraction = self.options.val_fraction
        if not 0 < fraction < 1:
            raise ZooError(f"val_fraction must be between 0 and 1, not {fraction}")
        counted: list[int] = []

        def cut() -> list[int]:  # a pass over the text, made only when it is needed
            if not counted:
                counted.append(int(sum(map(len, source.pieces())) * (1 - fraction)))
            return counted

        if fit and self.tokenizer is None:
            self.tokenizer = fit_tokenizer(
                self.options.tokenizer,
                self.options.vocab_size,
                text_data.upto(source.pieces(), cut()[0]),
            )
        return self._maps(source, cut)

    def model_config(self) -> dict[str, Any]:
        return {"vocab_size": self.tokenizer.vocab_size}

    def bind(self, model_config: Any) -> None:
        if self.tokenizer is None:
            raise ZooError("this task reads text through a tokenizer, and its config names none")
        vocab = getattr(model_config, "vocab_size", None)
        if vocab is not None and vocab < self.tokenizer.vocab_size:
            raise ZooError(
                f"the model's vocab_size {vocab} is smaller than the tokenizer's "
                f"{self.tokenizer.vocab_size}; leave vocab_size to the tokenizer"
            )
        if self.options.seq_len is None:
            self.options.seq_len = protocols.context_length(model_config) or 128
        if self.options.seq_len < 1:
            raise ZooError(f"seq_len must be at least 1 token, not {self.options.seq_len}")
        # A model config may declare the longest input its model reads (``max_context``).
        reach = protocols.max_context(model_config)
        if reach and self.options.seq_len > reach:
            raise ZooError(
                f"seq_len {self.options.seq_len} is longer than the model's context_length {reach}"
            )
        needed = self.options.seq_len + 1
        if hasattr(self, "train_ids") and len(self.train_ids) < needed:
            raise ZooError(
                f"the training text has {len(self.train_ids)} tokens, fewer than one window of "
                f"{needed}; give more text or a smaller seq_len (--set seq_len=N)"
            )
        # Checked here, before a run folder exists, not at the first evaluation.
        if hasattr(self, "val_ids") and len(self.val_ids) < needed:
            fraction = self.options.val_fraction
            held_out = (
                "give more validation text"
                if self.val_source
                else f"hold out more of the text (--set val_fraction=F, now {fraction})"
            )
            raise ZooError(
                f"the validation text has {len(self.val_ids)} tokens, fewer than one window of "
                f"{needed}; {held_out} or set a smaller seq_len (--set seq_len=N)"
            )

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple:
        T = self.options.seq_len
        starts = torch.randint(len(self.train_ids) - T, (batch_size,), generator=generator)
        # Windows read from the token map's file (uint16 or uint32), made int64 for the
        # embedding; the map's pages are never touched through its mapping.
        part = getattr(self, "_train_map", None) or tokens.TokenMap(self.train_ids, 0)
        windows = part.rows(starts.tolist(), T + 1).long()
        return windows[:, :-1], windows[:, 1:]  # (B, T), (B, T)

    def describe_data(self) -> str:
        return f"{self.data_name} ({len(getattr(self, 'train_ids', ()))} training tokens)"

    # -- loss and metrics ----------------------------------------------------------------------
    def loss(self, model: nn.Module, batch: tuple) -> torch.Tensor:
        x, y = batch
        logits = logits_of(model, x, "seq_len")  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))

    def _val_windows(self, seq_len: int) -> _Windows:
        n = (len(self.val_ids) - 1) // seq_len
        if n < 1:
            raise ZooError(
                f"the validation text has {len(self.val_ids)} tokens, fewer than one window of "
                f"{seq_len + 1}; give more validation text"
            )
        return _Windows(self._val_part(), seq_len, torch.arange(n))  # (N, 2, T), on demand

    def _val_part(self) -> tokens.TokenMap:
        """The validation ids as a token map, whose ``rows`` read windows from its file."""
        return getattr(self, "_val_map", None) or tokens.TokenMap(self.val_ids, self.val_chars)

    @torch.no_grad()
    def evaluate(
        self,
        model: nn.Module,
        batch_size: int,
        limit: int | None = None,
        seq_len: int | None = None,
    ) -> dict[str, float]:
        """Mean loss over non-overlapping windows of the validation text (evenly spread if limited)."""
        if not hasattr(self, "val_ids"):  # a loaded model: the validation text of its training
            self.setup_eval(None)
        seq_len = seq_len or self.options.seq_len or 128
        context = protocols.max_context(model)
        if context is not None and seq_len > context:
            raise ZooError(
                f"this model reads at most {context} tokens; evaluate with seq_len <= {context}"
            )
        windows = self._val_windows(seq_len)
        if limit is not None and limit * batch_size < len(windows):
            pick = torch.linspace(0, len(windows) - 1, limit * batch_size).long()
            windows = windows[pick]
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        for i in range(0, len(windows), batch_size):
            chunk = windows[i : i + batch_size].to(device)
            logits = model(chunk[:, 0])
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)).float(),
                chunk[:, 1].reshape(-1),
                reduction="sum",
            )
            total += loss.item()
            count += chunk[:, 1].numel()
        model.train(was_training)
        mean = total / count
        # Bits per character of the text covered (equal to bits per token for `char`).
        covered_chars = self.val_chars * count / max(1, len(self.val_ids) - 1)
        metrics = {"val_loss": mean, "val_bpc": total / covered_chars / math.log(2)}
        if not getattr(self.tokenizer, "per_character", False):
            metrics["val_ppl"] = math.exp(min(mean, 50.0))
        return metrics

    @torch.no_grad()
    def loss_by_position(
        self, model: nn.Module, batch_size: int, seq_len: int | None = None
    ) -> list[float]:
        """The mean validation loss at each position of the window: entry ``i`` is the loss of
        predicting a token from the ``i + 1`` tokens before it (each window starts afresh)."""
        if not hasattr(self, "val_ids"):  # a loaded model: the validation text of its training
            self.setup_eval(None)
        seq_len = seq_len or self.options.seq_len or 128
        context = protocols.max_context(model)
        if context is not None and seq_len > context:
            raise ZooError(
                f"this model reads at most {context} tokens; evaluate with seq_len <= {context}"
            )
        # Windows start every seq_len // 8 + 1 tokens, each afresh: eight times the samples of
        # back-to-back windows at each position (one position's mean is noisy), and a stride
        # that no period of the text (lines of a fixed width) keeps in step with.
        ids = self.val_ids  # a token map: read window by window, never all at once
        part = self._val_part()
        starts = range(0, len(ids) - seq_len, seq_len // 8 + 1)
        if len(starts) < 1:
            raise ZooError(
                f"the validation text has {len(ids)} tokens, fewer than one window of "
                f"{seq_len + 1}; give more validation text"
            )
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        total = torch.zeros(seq_len, dtype=torch.float64)
        for i in range(0, len(starts), batch_size):
            chunk = (
                part.rows(starts[i : i + batch_size], seq_len + 1).long().to(device)
            )  # (B, T + 1)
            logits = model(chunk[:, :-1])  # (B, T, V)
            loss = F.cross_entropy(
                logits.float().transpose(1, 2), chunk[:, 1:], reduction="none"
            )  # (B, T)
            total += loss.sum(dim=0).double().cpu()
        model.train(was_training)
        return (total / len(starts)).tolist()

    def example_batch(self, model_config: Any, batch_size: int = 2) -> tuple:
        T = min(16, protocols.context_length(model_config) or 16)
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(model_config.vocab_size, (batch_size, T + 1), generator=g)
        return ids[:, :-1], ids[:, 1:]

    def outputs(self, model: nn.Module, batch: tuple) -> torch.Tensor:
        return model(batch[0])

    # -- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        model: nn.Module,
        prompt: str = "",
        length: int = 300,
        temperature: float = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        stop: str | None = None,
        seed: int | None = None,
        use_cache: bool = True,
    ) -> str:
        """Sample ``length`` new tokens after ``prompt``; return the new text only."""
        return "".join(
            self.stream(model, prompt, length, temperature, top_k, top_p, stop, seed, use_cache)
        )

    @torch.no_grad()
    def stream(
        self,
        model: nn.Module,
        prompt: str = "",
        length: int = 300,
        temperature: float = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        stop: str | None = None,
        seed: int | None = None,
        use_cache: bool = True,
    ) -> Iterator[str]:
        """Like :meth:`generate`, yielding text as it is sampled."""
        if not isinstance(prompt, str):
            raise ZooError(f"the prompt must be a text (str), not {type(prompt).__name__}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ZooError(f"length must be a whole number of tokens, at least 1, not {length!r}")
        if not 0 <= temperature < math.inf:
            raise ZooError(f"temperature must be >= 0 and finite, not {temperature}")
        if top_k is not None and top_k < 0:
            raise ZooError(f"top-k must be at least 1 (or 0: off), not {top_k}")
        if top_p is not None and not 0 < top_p <= 1:
            raise ZooError(f"top-p must be in (0, 1], not {top_p}")
        device = next(model.parameters()).device
        generator = torch.Generator(device=device)
        if seed is None:  # a fresh seed for this generator alone; torch's global one is untouched
            generator.seed()
        else:
            generator.manual_seed(seed)
        model.eval()
        ids = self.tokenizer.encode(prompt) if prompt else []
        # The new text is the decoded prompt and new tokens less the decoded prompt, so that a
        # tokenizer that puts something between tokens (a word tokenizer's space) puts it there.
        prompt_ids, before = ids, self.tokenizer.decode(ids) if ids else ""
        if not ids:  # start from a newline-like token: the first id of the text
            ids = self.tokenizer.encode("\n")[:1] or [0]
        context = protocols.max_context(model)
        step = protocols.forward_step(model) if use_cache else None
        history = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
        state, cached = None, 0
        new_ids: list[int] = []
        emitted = ""
        for i in range(length):
            if step is None:
                window = history if context is None else history[:, -context:]
                logits = model(window)
            else:
                if state is None or (context is not None and cached + 1 > context):
                    # (Re)fill the state from the last `context` tokens; then one token a step.
                    feed = history if context is None else history[:, -context:]
                    state, cached = None, 0
                else:
                    feed = history[:, -1:]
                logits, state = step(feed, state)
                cached += feed.size(1)
            next_id = _sample(logits[0, -1].float(), temperature, top_k, top_p, generator)
            history = torch.cat([history, history.new_tensor([[next_id]])], dim=1)
            new_ids.append(next_id)
            text = self.tokenizer.decode(prompt_ids + new_ids)
            text = (
                text[len(before) :] if text.startswith(before) else self.tokenizer.decode(new_ids)
            )
            if stop and stop in text:
                yield text[len(emitted) : text.index(stop)]
                return
            safe = text if i == length - 1 else _settled(text, stop)
            if len(safe) > len(emitted):
                yield safe[len(emitted) :]
                emitted = safe


class _Windows:
    """Windows ``(N, 2, T)`` of a token map (inputs, and targets one token on), read only when
    a slice of them is taken, so that a large validation split is never all in memory. Indexed
    by a tensor of rows, it is a subset of them, still unread."""

    def __init__(self, part: tokens.TokenMap, seq_len: int, rows: torch.Tensor):
        self.part, self.seq_len, self.rows = part, seq_len, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: slice | torch.Tensor) -> Any:
        if isinstance(index, torch.Tensor):
            return _Windows(self.part, self.seq_len, self.rows[index])
        T = self.seq_len
        starts = [r * T for r in self.rows[index].tolist()]
        windows = self.part.rows(starts, T + 1).long()  # (B, T + 1)
        return torch.stack([windows[:, :-1], windows[:, 1:]], dim=1)  # (B, 2, T)


def _settled(text: str, stop: str | None) -> str:
    """The part of ``text`` that later tokens cannot change: hold back a trailing replacement
    character (half of a multi-byte symbol) and a tail that may be the start of ``stop``."""
    text = text.rstrip("\ufffd")
    if stop:
        for n in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:n]):
                return text[:-n]
    return text


def _sample(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator,
) -> int:
    """One id from logits ``(V,)``: greedy at temperature 0, else top-k then nucleus sampling."""
    if temperature == 0:
        return int(logits.argmax())
    # Less the largest first: a tiny temperature then sends the others to -inf, not the
    # largest to inf (whose softmax is not a number).
    logits = (logits - logits.max()) / temperature
    if top_k is not None and top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        drop = cumulative - sorted_probs > top_p  # keep the smallest set reaching top_p
        sorted_probs[drop] = 0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))
