import pytest
import torch
from torch import nn

from zoo_core import artifacts
from zoo_core.errors import ZooError


class Tied(nn.Module):
    def __init__(self, n=8):
        super().__init__()
        self.embed = nn.Embedding(5, n)
        self.head = nn.Linear(n, 5, bias=False)
        self.head.weight = self.embed.weight


def test_tied_weights_are_stored_once_and_restored(tmp_path):
    torch.manual_seed(0)
    model = Tied()
    artifacts.save_weights(model, tmp_path / "m.safetensors", {"zoo.model": "tied"})
    state, meta = artifacts.state_from_file(tmp_path / "m.safetensors")
    assert meta["zoo.model"] == "tied"
    other = Tied()
    artifacts.load_weights(other, tmp_path / "m.safetensors")
    assert torch.equal(other.embed.weight, model.embed.weight)
    assert other.head.weight is other.embed.weight
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp file left


def test_strict_load_names_missing_unexpected_and_mismatched_keys(tmp_path):
    artifacts.state_to_file(
        {"embed.weight": torch.zeros(5, 4), "extra.bias": torch.zeros(3)},
        tmp_path / "w.safetensors",
    )
    with pytest.raises(ZooError) as info:
        artifacts.load_weights(Tied(8), tmp_path / "w.safetensors")
    message = str(info.value)
    assert "unexpected keys: extra.bias" in message
    assert "embed.weight (file (5, 4), model (5, 8))" in message


def test_a_file_that_is_not_safetensors_is_a_clear_error(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x80\x04not safetensors at all")
    with pytest.raises(ZooError, match="not a readable safetensors file"):
        artifacts.load_weights(Tied(), bad)
