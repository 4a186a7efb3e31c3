"""The LSTM plugin: its variants, a state carried across calls, tied weights, config checks."""

import pytest
import torch
from zoo_lstm.model import LSTMConfig, LSTMLanguageModel

from zoo_core.catalog import model_info
from zoo_core.testing import check_model, model_names

TINY = {"vocab_size": 11, "embed_dim": 8, "hidden_size": 8, "num_layers": 2, "dropout": 0.0}


@pytest.mark.parametrize("name", model_names(plugin="lstm"))
def test_contract_of_every_variant(name):
    check_model(name)


def test_the_variants_are_the_sizes_they_say():
    info = model_info("lstm-large")
    config = {c["name"]: c["default"] for c in info["config"]}
    V, H, L = config["vocab_size"], config["hidden_size"], config["num_layers"]
    assert (H, L) == (1024, 3) and config["tie_weights"]
    per_layer = 4 * (H * H + H * H + 2 * H)  # input and recurrent weights, two biases, 4 gates
    assert info["parameters"] == V * H + L * per_layer + V  # embedding (= head), head bias


def test_forward_step_carries_the_state_from_one_call_to_the_next():
    torch.manual_seed(0)
    model = LSTMLanguageModel(LSTMConfig(**TINY)).eval()
    ids = torch.randint(11, (3, 10))  # (B, T)
    whole = model(ids)  # (B, T, V)
    first, state = model.forward_step(ids[:, :4])
    rest, _ = model.forward_step(ids[:, 4:], state)
    assert torch.allclose(torch.cat([first, rest], 1), whole, atol=1e-6)
    fresh, _ = model.forward_step(ids[:, 4:])  # without the state: another answer
    assert not torch.allclose(fresh, rest, atol=1e-3)


def test_tied_weights_are_one_tensor_and_untied_ones_are_two():
    tied = LSTMLanguageModel(LSTMConfig(**TINY))
    assert tied.head.weight is tied.embed.weight
    untied = LSTMLanguageModel(LSTMConfig(**{**TINY, "tie_weights": False, "hidden_size": 12}))
    assert untied.head.weight.shape == (11, 12) and untied.head.weight is not untied.embed.weight


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"hidden_size": 12}, "tie_weights needs embed_dim == hidden_size, not 8 and 12"),
        ({"num_layers": 0}, "must be positive"),
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
    ],
)
def test_a_config_that_cannot_work_is_refused(fields, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(")", r"\)")):
        LSTMConfig(**{**TINY, **fields})
