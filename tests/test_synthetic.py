"""The synthetic long-range tasks: seeded generators, answers that are right, metrics, lengths."""

import pytest
import torch

import zoo_core
from zoo_core.data import synthetic
from zoo_core.data.synthetic import FIRST_SYMBOL, NOISE, SEP
from zoo_core.errors import ZooError
from zoo_core.tasks import synthetic as tasks
from zoo_core.tasks.lm import LanguageModeling, LMOptions

GENERATORS = {
    "copy": lambda n, g: synthetic.copy(n, 6, 5, g, delay=2),
    "selective-copy": lambda n, g: synthetic.selective_copy(n, 10, 5, g, num_marked=3),
    "associative-recall": lambda n, g: synthetic.associative_recall(n, 5, 8, g),
    "parity": lambda n, g: synthetic.parity(n, 9, 2, g),
    "induction": lambda n, g: synthetic.induction(n, 12, 4, g),
    "mqar": lambda n, g: synthetic.mqar(n, 5, 20, g),
    "repeated-tokens": lambda n, g: synthetic.repeated_tokens(n, 6, 10, g),
}


def _draw(name, seed, n=64):
    return GENERATORS[name](n, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_are_deterministic_by_seed(name):
    seq, answer = _draw(name, 3)
    again, answer_again = _draw(name, 3)
    assert torch.equal(seq, again) and torch.equal(answer, answer_again)
    assert not torch.equal(seq, _draw(name, 4)[0])
    assert answer[:, -1].all() and not answer[:, 0].any()  # answers at the end, never first


def test_copy_answer_is_the_sequence():
    seq, answer = _draw("copy", 0)
    assert seq.shape == (64, 6 + 2 + 1 + 6)
    assert torch.equal(seq[:, 9:], seq[:, :6]) and (seq[:, 8] == SEP).all()
    assert (seq[:, 6:8] == synthetic.BLANK).all() and answer.sum(1).eq(6).all()


def test_selective_copy_answer_is_the_marked_symbols_in_order():
    seq, answer = _draw("selective-copy", 0)
    for row, mask in zip(seq, answer, strict=True):
        region = row[:10]
        marked = region[region != NOISE]
        assert torch.equal(row[mask], marked) and len(marked) == 3


def test_associative_recall_answers_the_queried_value():
    seq, answer = _draw("associative-recall", 0)
    for row in seq:
        keys, values = row[0:10:2], row[1:10:2]
        assert len(set(keys.tolist())) == 5  # distinct keys
        assert row[10] == SEP
        assert row[12] == values[keys.tolist().index(int(row[11]))]


def test_parity_answer_is_the_parity():
    seq, _ = _draw("parity", 0)
    bits = seq[:, :9] - FIRST_SYMBOL
    assert ((bits == 0) | (bits == 1)).all()
    assert torch.equal(seq[:, -1] - FIRST_SYMBOL, bits.sum(1) % 2)


def test_induction_answer_follows_the_only_earlier_occurrence():
    seq, _ = _draw("induction", 0)
    for row in seq:
        body, q = row[:12].tolist(), int(row[12])
        assert body.count(q) == 1
        assert row[13] == body[body.index(q) + 1]


def test_exact_match_and_token_accuracy_on_hand_made_predictions():
    targets = torch.tensor([[5, 6, 7, 8], [5, 6, 7, 8]])
    mask = torch.tensor([[False, True, True, True], [False, True, True, True]])
    logits = torch.nn.functional.one_hot(targets, 10).float()  # (B, T, V): perfect predictions
    logits[:, 0] = torch.nn.functional.one_hot(torch.tensor(0), 10)  # wrong, but not an answer
    assert tasks.score(logits, targets, mask) == {"exact": 2, "right": 6, "tokens": 6}
    logits[1, 2] = torch.nn.functional.one_hot(torch.tensor(3), 10)  # one answer token wrong
    assert tasks.score(logits, targets, mask) == {"exact": 1, "right": 5, "tokens": 6}


class _Oracle(torch.nn.Module):
    """Predicts the answer of a copy sequence perfectly, except where told to slip."""

    max_context = None

    def __init__(self, vocab, slip_at=None):
        super().__init__()
        self.vocab, self.slip_at = vocab, slip_at
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        L = (x.size(1)) // 2  # copy, no delay: x = a1..aL SEP a1..a(L-1)
        pred = torch.zeros_like(x)
        pred[:, L:] = x[:, :L]
        if self.slip_at is not None:
            pred[0, L + self.slip_at] = SEP  # one wrong answer token in the first example
        return torch.nn.functional.one_hot(pred, self.vocab).float()


def test_evaluate_scores_a_perfect_and_a_slipping_model_at_any_length():
    task = tasks.Copy(tasks.CopyOptions(length=5, vocab_size=4, val_size=16))
    task.setup(None)
    vocab = task.model_config()["vocab_size"]
    for length in (5, 9):
        perfect = task.evaluate(_Oracle(vocab), batch_size=8, length=length)
        assert perfect["val_accuracy"] == 1.0 and perfect["val_token_accuracy"] == 1.0
        # one batch of 16: the oracle slips once, in the first example
        slipping = task.evaluate(_Oracle(vocab, slip_at=2), batch_size=16, length=length)
        assert slipping["val_accuracy"] == 15 / 16
        assert slipping["val_token_accuracy"] == 1 - 1 / (16 * length)


def test_validation_examples_depend_on_the_seed_and_length_only():
    a, b = tasks.Parity(), tasks.Parity()
    a.setup(None, seed=1)
    b.setup(None, seed=1)
    assert torch.equal(a.validation_set(16)[0], b.validation_set(16)[0])
    b.setup(None, seed=2)
    assert not torch.equal(a.validation_set(16)[0], b.validation_set(16)[0])


def test_min_length_trains_on_every_length_up_to_length():
    task = tasks.Parity(tasks.ParityOptions(length=6, min_length=2))
    task.setup(None)
    g = torch.Generator().manual_seed(0)
    widths = {task.train_batch(4, g)[0].size(1) for _ in range(60)}
    assert widths == {n + 1 for n in range(2, 7)}  # parity of n bits reads n + 1 tokens
    with pytest.raises(ZooError, match="min_length"):
        tasks.Parity(tasks.ParityOptions(length=6, min_length=7)).setup(None)


def test_impossible_settings_are_clear_errors():
    recall = tasks.AssociativeRecall(tasks.RecallOptions(length=20, vocab_size=16))
    with pytest.raises(ZooError, match="keys are distinct"):
        recall.setup(None)
    with pytest.raises(ZooError, match="generates its data"):
        tasks.Copy().setup("some.txt")


def test_learned_positions_refuse_longer_sequences_with_a_clear_error():
    model = zoo_core.create_model(
        "transformer",
        vocab_size=11,
        n_layer=1,
        n_head=2,
        n_embd=16,
        context_length=20,
        pos_encoding="learned",
    )
    task = tasks.Copy()  # length 16 is 32 tokens
    task.setup(None)
    with pytest.raises(ZooError, match="learned positions"):
        task.bind(model.config)
    with pytest.raises(ZooError, match="at most 20 tokens"):
        task.evaluate(model, 8, length=16)
    assert 0 <= task.evaluate(model, 8, length=9)["val_accuracy"] <= 1  # 18 tokens fit


def test_an_lm_model_trains_on_a_synthetic_task(tmp_path):
    artifact, final = zoo_core.train(
        "lstm",
        task="parity",
        out=tmp_path / "run",
        progress=False,
        steps=3,
        batch_size=8,
        overrides={"hidden_size": 16, "embed_dim": 16, "length": 6, "val_size": 32},
    )
    assert {"val_loss", "val_accuracy", "val_token_accuracy"} <= set(final)
    loaded = zoo_core.load(tmp_path / "run")
    assert loaded.task.evaluate(loaded.model, 8, length=12)["val_accuracy"] >= 0


def test_lm_train_fraction_keeps_the_leading_part_and_the_tokenizer():
    full, part = LanguageModeling(LMOptions()), LanguageModeling(LMOptions(train_fraction=0.1))
    full.setup(None)
    part.setup(None)
    assert len(part.train_ids) == round(len(full.train_ids) * 0.1)
    assert torch.equal(part.train_ids, full.train_ids[: len(part.train_ids)])
    assert part.tokenizer.vocab_size == full.tokenizer.vocab_size
    with pytest.raises(ZooError, match="train_fraction"):
        LanguageModeling(LMOptions(train_fraction=0)).setup(None)
