"""The attention LSTM encoder-decoder: its three scores, padding, and learning SCAN."""

import pytest
import torch
from zoo_lstm.seq2seq import LSTMSeq2Seq, LSTMSeq2SeqConfig

import zoo_core
from zoo_core.testing import check_model

TINY = {"source_vocab_size": 13, "target_vocab_size": 11, "embed_dim": 16, "hidden_size": 16}


@pytest.mark.parametrize("attention", ["dot", "general", "additive"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_contract_of_every_score_both_ways(attention, bidirectional):
    check_model("lstm-seq2seq", {"attention": attention, "bidirectional": bidirectional})


@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_of_the_source_changes_nothing(bidirectional):
    torch.manual_seed(0)
    model = LSTMSeq2Seq(LSTMSeq2SeqConfig(**TINY, bidirectional=bidirectional)).eval()
    source = torch.randint(3, 13, (1, 5))
    target = torch.randint(3, 11, (1, 4))
    padded = torch.cat([source, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    with torch.no_grad():
        alone = model(source, source != 0, target)
        with_pad = model(padded, padded != 0, target)
    assert torch.allclose(alone, with_pad, atol=1e-5)


def test_the_scores_differ_and_attention_ignores_padding():
    torch.manual_seed(0)
    outputs = []
    for attention in ("dot", "general", "additive"):
        torch.manual_seed(0)
        model = LSTMSeq2Seq(LSTMSeq2SeqConfig(**TINY, attention=attention)).eval()
        memory = torch.randn(2, 5, 16)
        mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
        context = model.attention(torch.randn(2, 3, 16), memory, mask)
        # The second source has two real states: its contexts are mixtures of them alone.
        changed = memory.clone()
        changed[1, 2:] = 100.0
        assert torch.allclose(
            model.attention(torch.zeros(2, 3, 16), changed, mask)[1],
            model.attention(torch.zeros(2, 3, 16), memory, mask)[1],
        )
        outputs.append(context)
    assert not torch.allclose(outputs[0], outputs[1]) and not torch.allclose(outputs[1], outputs[2])


def test_bad_configs_are_one_line():
    with pytest.raises(ValueError, match="dot, general or additive"):
        LSTMSeq2SeqConfig(attention="concat")
    with pytest.raises(ValueError, match="tie_output needs embed_dim == hidden_size"):
        LSTMSeq2SeqConfig(embed_dim=8, hidden_size=16)


SCAN_RECIPE = {
    "train": {"steps": 1200, "batch_size": 64, "lr": 5e-3, "eval_interval": 10**6, "seed": 0},
    "overrides": {"embed_dim": 64, "hidden_size": 64, "dropout": 0.0, "warmup": 20},
}


@pytest.mark.slow
def test_learns_scan_simple(tmp_path):
    """SCAN's simple split: at least 95% exact match on its 4,182 test commands."""
    _, metrics = zoo_core.train(
        "lstm-seq2seq",
        out=tmp_path / "run",
        progress=False,
        **SCAN_RECIPE["train"],
        overrides=SCAN_RECIPE["overrides"],
    )
    assert metrics["val_exact_match"] >= 0.95, metrics
