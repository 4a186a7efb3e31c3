"""GPT-3's sizes (Brown et al. 2020, Table 2.1) and its dense and locally banded attention."""

import subprocess
import sys

import pytest
import torch
from zoo_transformer import GPT3_TABLE
from zoo_transformer.model import TransformerConfig, TransformerLM

from zoo_core.catalog import model_info
from zoo_core.testing import check_model

# The paper's counts (Table 2.1, "n_params").
PAPER = {
    "gpt3-small": 125e6,
    "gpt3-medium": 350e6,
    "gpt3-large": 760e6,
    "gpt3-xl": 1.3e9,
    "gpt3-2.7b": 2.7e9,
}
# Table 2.1: layers, width, head size, batch size in tokens, learning rate.
TABLE = {
    "gpt3-small": (12, 768, 64, 0.5e6, 6.0e-4),
    "gpt3-medium": (24, 1024, 64, 0.5e6, 3.0e-4),
    "gpt3-large": (24, 1536, 96, 0.5e6, 2.5e-4),
    "gpt3-xl": (24, 2048, 128, 1.0e6, 2.0e-4),
    "gpt3-2.7b": (32, 2560, 80, 1.0e6, 1.6e-4),
}


@pytest.mark.parametrize("name", list(PAPER))
def test_parameter_counts_are_the_papers_within_2_percent(name):
    info = model_info(name)  # counted on the meta device
    assert abs(info["parameters"] - PAPER[name]) / PAPER[name] < 0.02, info["parameters"]
    assert info["train_state_bytes"] == 16 * info["parameters"]


@pytest.mark.parametrize("name", list(TABLE))
def test_sizes_and_training_defaults_are_table_2_1(name):
    info = model_info(name)
    config = {c["name"]: c["default"] for c in info["config"]}
    layers, width, head_size, tokens, lr = TABLE[name]
    assert (config["n_layer"], config["n_embd"]) == (layers, width)
    assert config["n_embd"] // config["n_head"] == head_size
    assert config["n_embd"] % config["n_head"] == 0
    assert config["context_length"] == 2048 and config["vocab_size"] == 50257
    train = info["train_defaults"]
    assert train["lr"] == lr and train["seq_len"] == 2048
    assert abs(train["batch_size"] * 2048 - tokens) / tokens < 0.01
    assert {row[0] for row in GPT3_TABLE} == set(TABLE)


def test_counting_the_largest_allocates_nothing():
    """`zoo info gpt3-2.7b` counts on the meta device: a real build would take 10 GiB."""
    script = (
        "import resource; from zoo_core.catalog import model_info; "
        "n = model_info('gpt3-2.7b')['parameters']; "
        "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    parameters, peak_kib = map(int, out.stdout.split())
    assert parameters > 2.6e9
    # The process's peak: below 2 GiB, nothing near the 10.6 GiB of fp32 weights.
    assert peak_kib < 2 * 2**20


def test_zoo_info_says_the_memory_to_train():
    out = subprocess.run(
        [sys.executable, "-m", "zoo_core", "info", "gpt3-xl"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if "memory to train" in line)
    parameters = model_info("gpt3-xl")["parameters"]
    assert f"{parameters * 16 / 2**30:,.1f} GiB" in line


def _config(**over):
    base = {"vocab_size": 11, "n_layer": 1, "n_head": 2, "n_embd": 16, "context_length": 32}
    return TransformerConfig(**{**base, **over})


def _reach(model, T=16):
    """reach[i, j]: whether the output at position i changes when only token j changes."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(11, (1, T), generator=g)
    with torch.no_grad():
        base = model(ids)[0]
        reach = torch.zeros(T, T, dtype=torch.bool)
        for j in range(T):
            changed = ids.clone()
            changed[0, j] = (changed[0, j] + 1) % 11
            reach[:, j] = (model(changed)[0] - base).abs().amax(-1) > 1e-6
    return reach


@pytest.mark.parametrize("encoding", ["learned", "rope", "alibi"])
def test_no_token_attends_outside_its_band(encoding):
    torch.manual_seed(0)
    band = 4
    model = TransformerLM(_config(attention="banded", band=band, pos_encoding=encoding)).eval()
    reach = _reach(model)
    i = torch.arange(16)
    distance = i[:, None] - i[None, :]
    expected = (distance >= 0) & (distance < band)  # itself and the band - 1 before it
    assert torch.equal(reach, expected)


def test_alternating_layers_are_dense_then_banded():
    model = TransformerLM(_config(n_layer=4, attention="alternating-banded", band=3))
    assert [model._banded(i) for i in range(4)] == [False, True, False, True]
    mask = model._band_mask(6, 0, None, torch.device("cpu"))
    distance = torch.arange(6)[:, None] - torch.arange(6)[None, :]
    assert torch.equal(mask, (distance >= 0) & (distance < 3))
    # A banded layer after a dense one: every earlier token reaches the last one.
    assert _reach(model.eval())[-1].all()


def test_dense_reads_everything_before():
    model = TransformerLM(_config()).eval()
    assert torch.equal(_reach(model), torch.ones(16, 16, dtype=torch.bool).tril())


@pytest.mark.parametrize("attention", ["banded", "alternating-banded"])
def test_banded_models_pass_the_contract_with_the_cache(attention):
    # A band shorter than the checks' sequences, so that the cache must drop keys.
    check_model("transformer", {"attention": attention, "band": 3})
    check_model("gpt3-small", {"attention": attention, "band": 3})


def test_a_bad_attention_setting_is_one_line():
    with pytest.raises(ValueError, match="dense, banded or alternating-banded"):
        _config(attention="sparse")
    with pytest.raises(ValueError, match="band must be at least 1"):
        _config(attention="banded", band=0)
