"""Sequence classification: one label per text.

A model for this task maps ids ``(B, T)`` and a mask ``(B, T)`` (True on real tokens, False on
padding) to class logits ``(B, num_classes)``. Texts are tokenized like ``lm``'s (a tokenizer
fitted on the training texts, saved with the weights) and cut to ``max_len`` tokens.

Data: a folder with one sub-folder per class holding one ``.txt`` file per example, or a JSONL or
CSV file with ``text`` and ``label``. The embedded default is a seeded synthetic set (is a string
of brackets balanced?) that needs the whole string to be solved.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import protocols
from zoo_core.data import brackets, hf
from zoo_core.data.labelled import read_labelled, sort_labels
from zoo_core.errors import ZooError
from zoo_core.tasks.base import Task, trained_on
from zoo_core.tokenizers.base import fit_tokenizer


@dataclass
class SeqClsOptions:
    tokenizer: str = "char"  # a registered tokenizer (`zoo tokenizers`)
    vocab_size: int | None = None  # for tokenizers that learn a vocabulary of a chosen size
    max_len: int | None = None  # tokens per text (longer are cut); default: context_length
    val_fraction: float = 0.1  # held out for validation when no --val-data is given
    split: str = "train"  # of a data set read through `datasets` (hf:ORG/NAME, Parquet, Arrow)
    text_column: str | None = None  # its column of text; default: its one string column
    label_column: str | None = None  # its labels; default: its ClassLabel column


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # ids (B, T), mask (B, T), labels (B,)


class SequenceClassification(Task):
    name = "sequence-classification"
    pipeline_tag = "text-classification"
    try_command = "zoo predict {source} 'a text to classify'"
    model_protocol = protocols.SequenceClassifier
    Options = SeqClsOptions
    metric = "val_accuracy"
    lower_is_better = False
    unit = "samples"

    def load_state(self, state: dict[str, Any]) -> None:
        self.data_name = state.get("data", "")
        self.val_source = state.get("val_data")  # the config's, handed on by build_task
        self.classes: list[str] = list(state.get("classes", []))
        if state.get("max_len"):
            self.options.max_len = state["max_len"]

    def state(self) -> dict[str, Any]:
        return {"data": self.data_name, "classes": self.classes, "max_len": self.options.max_len}

    # -- data ----------------------------------------------------------------------------------
    def setup(self, data: str | None, val_data: str | None = None, seed: int = 0) -> None:
        self.val_source = None if val_data is None else str(val_data)
        names = None
        if data is None:
            train, val = brackets.default_splits()
            self.data_name = brackets.NAME
        else:
            data = hf.pin(data) if hf.is_hub(data) else data
            train, val, names = self._read(data)
            self.data_name = str(data)
            if val_data is None and val is None:
                train, val = _split(train, self.options.val_fraction)
        if val_data is not None:
            val = self._read(val_data, held_out=False)[0]
        labels = {label for _, label in train}
        if len(labels) < 2:
            raise ZooError(
                f"the training data has {len(labels)} class ({', '.join(labels)}); "
                "a classifier needs examples of at least two classes"
            )
        # A ClassLabel column names the classes, in its order; otherwise the labels found.
        self.classes = names or sort_labels(labels)
        if self.tokenizer is None:
            self.tokenizer = fit_tokenizer(
                self.options.tokenizer,
                self.options.vocab_size,
                "\n".join(text for text, _ in train),
            )
        self.train_set = self._encode(train)
        self.val_set = self._encode(val)

    def _read(
        self, data: str, held_out: bool = True
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]] | None, list[str] | None]:
        """(training examples, the data set's own validation split or None, class names or
        None) of a file or folder, or of a data set read through `datasets`."""
        if not hf.is_table(data):
            return read_labelled(data), None, None
        data = hf.pin(data) if hf.is_hub(data) else data
        train, names = self._table(data, hf.open_split(data, self.options.split))
        found = hf.validation_split(data) if held_out else None
        val = None if found is None else self._table(data, found[1])[0]
        return train, val, names

    def _table(self, data: str, dataset: Any) -> tuple[list[tuple[str, str]], list[str] | None]:
        o = self.options
        label = hf.find_column(dataset, "label", o.label_column, "label_column", data)
        text = hf.find_column(dataset, "text", o.text_column, "text_column", data, exclude=label)
        names = hf.class_names(dataset, label)
        texts = []
        for value in hf.Column(dataset, text):
            if value is not None and not isinstance(value, str):
                raise ZooError(f"column '{text}' of '{data}' holds {type(value).__name__} values")
            texts.append(value or "")
        return list(zip(texts, hf.labels(dataset, label, names, data), strict=True)), names

    def setup_eval(self, data: str | None) -> None:
        """``data``; by default the validation examples of training (--val-data, the data set's
        validation split, or held out)."""
        if data is None and self.val_source:
            data = trained_on(self.val_source)
        if data is not None:
            val = self._read(data, held_out=False)[0]
        elif self.data_name in ("", brackets.NAME):
            val = brackets.default_splits()[1]
        else:
            train, val, _ = self._read(trained_on(self.data_name))
            if val is None:
                val = _split(train, self.options.val_fraction)[1]
        self.val_set = self._encode(val)

    def _encode(self, examples: list[tuple[str, str]]) -> list[tuple[list[int], int]]:
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({label for _, label in examples} - set(index))
        if unknown:
            raise ZooError(
                f"labels {', '.join(map(repr, unknown[:5]))} are not among the classes the model "
                f"was trained on ({', '.join(self.classes)})"
            )
        # An empty text still gets one (unknown) token, so every row has a key to attend to.
        return [(self.tokenizer.encode(text) or [0], index[label]) for text, label in examples]

    def model_config(self) -> dict[str, Any]:
        return {"vocab_size": self.tokenizer.vocab_size, "num_classes": len(self.classes)}

    def bind(self, model_config: Any) -> None:
        if self.tokenizer is None:
            raise ZooError("this task reads text through a tokenizer, and its config names none")
        for key, needed in self.model_config().items():
            have = getattr(model_config, key, None)
            if have is not None and have < needed:
                raise ZooError(
                    f"the model's {key} {have} is smaller than the data needs ({needed})"
                )
        heads = getattr(model_config, "num_classes", None)
        if heads is not None and heads != len(self.classes):
            # A head of more classes than names would predict a class with no name.
            raise ZooError(
                f"the model's num_classes is {heads} but the task has {len(self.classes)} "
                f"classes; leave num_classes unset to take it from the data"
            )
        context = protocols.context_length(model_config)
        if self.options.max_len is None:
            self.options.max_len = context or 512
        if self.options.max_len < 1:
            raise ZooError(f"max_len must be at least 1 token, not {self.options.max_len}")
        reach = protocols.max_context(model_config)  # the longest input, if limited
        if reach and self.options.max_len > reach:
            raise ZooError(
                f"max_len {self.options.max_len} is longer than the model's context_length {reach}"
            )

    def _collate(self, rows: list[tuple[list[int], int]]) -> Batch:
        limit = self.options.max_len or 512
        seqs = [ids[:limit] for ids, _ in rows]
        T = max(len(s) for s in seqs)
        ids = torch.zeros(len(seqs), T, dtype=torch.long)
        mask = torch.zeros(len(seqs), T, dtype=torch.bool)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = True
        labels = torch.tensor([label for _, label in rows], dtype=torch.long)
        return ids, mask, labels  # (B, T), (B, T), (B,)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        pick = torch.randint(len(self.train_set), (batch_size,), generator=generator)
        return self._collate([self.train_set[i] for i in pick.tolist()])

    def describe_data(self) -> str:
        n = len(getattr(self, "train_set", ()))
        return f"{self.data_name} ({n} training examples, classes: {', '.join(self.classes)})"

    # -- loss and metrics ----------------------------------------------------------------------
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        ids, mask, labels = batch
        return F.cross_entropy(model(ids, mask), labels)  # logits (B, num_classes)

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, batch_size: int, limit: int | None = None
    ) -> dict[str, float]:
        """Loss, accuracy and accuracy within each class on the validation examples."""
        rows = self.val_set
        if limit is not None and limit * batch_size < len(rows):
            step = len(rows) / (limit * batch_size)
            rows = [rows[int(i * step)] for i in range(limit * batch_size)]
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        total_loss = 0.0
        correct = torch.zeros(len(self.classes))
        count = torch.zeros(len(self.classes))
        for i in range(0, len(rows), batch_size):
            ids, mask, labels = self._collate(rows[i : i + batch_size])
            logits = model(ids.to(device), mask.to(device)).float().cpu()
            total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
            hits = (logits.argmax(-1) == labels).float()
            correct.index_add_(0, labels, hits)
            count.index_add_(0, labels, torch.ones_like(hits))
        model.train(was_training)
        metrics = {
            "val_loss": total_loss / len(rows),
            "val_accuracy": (correct.sum() / len(rows)).item(),
        }
        for c, key in enumerate(_keys(self.classes)):
            if count[c] > 0:
                metrics[f"val_acc_{key}"] = (correct[c] / count[c]).item()
        return metrics

    def example_batch(self, model_config: Any, batch_size: int = 2) -> Batch:
        T = min(12, protocols.context_length(model_config) or 12)
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(model_config.vocab_size, (batch_size, T), generator=g)
        mask = torch.ones(batch_size, T, dtype=torch.bool)
        mask[-1, T // 2 :] = False  # the last row is padded
        labels = torch.randint(model_config.num_classes, (batch_size,), generator=g)
        return ids, mask, labels

    def outputs(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model(batch[0], batch[1])

    # -- inference -----------------------------------------------------------------------------
    def predict(
        self, model: nn.Module, texts: list[str], top_k: int = 5, batch_size: int = 64
    ) -> list[dict[str, Any]]:
        """The ``top_k`` likeliest classes of each text, with probabilities, likeliest first."""
        if top_k < 1:
            raise ZooError(f"top-k must be at least 1, not {top_k}")
        if not texts:
            raise ZooError("give at least one text to classify")
        if not all(isinstance(text, str) for text in texts):
            odd = next(type(t).__name__ for t in texts if not isinstance(t, str))
            raise ZooError(f"cannot classify {odd!r} objects: give texts (str)")
        results = []
        for i in range(0, len(texts), batch_size):
            chunk = texts[i : i + batch_size]
            for text, probs in zip(chunk, self.classify(model, chunk), strict=True):
                ranked = sorted(probs.items(), key=lambda kv: -kv[1])[:top_k]
                results.append(
                    {
                        "text": text,
                        "predictions": [{"class": c, "probability": p} for c, p in ranked],
                    }
                )
        return results

    @torch.no_grad()
    def classify(self, model: nn.Module, texts: list[str]) -> list[dict[str, float]]:
        """Class probabilities of each text, as ``{class: probability}``."""
        device = next(model.parameters()).device
        model.eval()
        rows = [(self.tokenizer.encode(t) or [0], 0) for t in texts]
        ids, mask, _ = self._collate(rows)
        probs = torch.softmax(model(ids.to(device), mask.to(device)).float(), dim=-1).cpu()
        return [dict(zip(self.classes, p.tolist(), strict=True)) for p in probs]


def _keys(classes: list[str]) -> list[str]:
    """Class names usable inside metric names, one per class: ``c++`` and ``c`` become ``c``
    and ``c_2`` (in class order), where a plain substitution would give both ``c``."""
    keys: list[str] = []
    for name in classes:
        base = re.sub(r"\W+", "_", name).strip("_") or "class"
        key, n = base, 1
        while key in keys:
            n += 1
            key = f"{base}_{n}"
        keys.append(key)
    return keys


def _split(examples: list[tuple[str, str]], val_fraction: float) -> tuple[list, list]:
    """Hold out ``val_fraction`` of each class (a seeded shuffle within each), so that every
    class keeps at least one training example and the shares of the classes are kept."""
    if not 0 < val_fraction < 1:
        raise ZooError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    if len(examples) < 2:
        raise ZooError(f"the data has {len(examples)} example; give at least two, or --val-data")
    by_class: dict[str, list[tuple[str, str]]] = {}
    for example in examples:
        by_class.setdefault(example[1], []).append(example)
    rng = random.Random(0)
    train, val = [], []
    for label in sort_labels(set(by_class)):
        group = by_class[label]
        rng.shuffle(group)
        n_val = min(len(group) - 1, round(len(group) * val_fraction))
        train += group[: len(group) - n_val]
        val += group[len(group) - n_val :]
    if not val:  # too few examples for a share of any class: one of the largest class
        largest = max(by_class.values(), key=len)
        val.append(largest[-1])
        train.remove(largest[-1])
    rng.shuffle(train)
    rng.shuffle(val)
    return train, val
