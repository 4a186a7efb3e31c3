"""`zoo compare`: the same budget for every model, results at every length, tables and plots."""

import json

import pytest
import torch
from PIL import Image
from zoo_transformer.model import TransformerConfig, TransformerLM

import zoo_core
from zoo_core.compare import compare, split_sets
from zoo_core.errors import ZooError

TINY = [
    "--set",
    "n_layer=1",
    "--set",
    "n_head=2",
    "--set",
    "n_embd=16",
    "--set",
    "hidden_size=16",
    "--set",
    "embed_dim=16",
    "--set",
    "val_size=32",
]
LSTM_TINY = ["--set", "hidden_size=16", "--set", "embed_dim=16", "--set", "val_size=32"]


def test_compare_end_to_end_writes_results_for_every_variant_and_length(zoo, tmp_path):
    out = tmp_path / "cmp"
    proc = zoo(
        "compare",
        "lstm",
        "transformer",
        "--task",
        "copy",
        "--train-length",
        "4",
        "--eval-lengths",
        "4,6",
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--out",
        out,
        *TINY,
        # learned positions for 9 tokens: length 4 (8 tokens) fits, length 6 (12) is refused
        "--set",
        "pos_encoding=learned,rope",
        "--set",
        "context_length=9",
    )
    results = json.loads((out / "results.json").read_text())
    labels = [v["label"] for v in results["variants"]]
    assert labels == ["lstm", "transformer pos_encoding=learned", "transformer pos_encoding=rope"]
    assert results["eval_lengths"] == [4, 6]
    rows = {row["label"]: row for row in results["summary"]}
    for label in labels:
        assert set(rows[label]["lengths"]) == {"4", "6"}
        assert rows[label]["params"] > 0
    for run in results["runs"]:
        assert run["loss_curve"] and (out / run["folder"] / "model.safetensors").exists()
    assert "refused" in rows["transformer pos_encoding=learned"]["lengths"]["6"]
    for label in ("lstm", "transformer pos_encoding=rope"):
        acc = rows[label]["lengths"]["6"]["val_accuracy"]["mean"]
        assert 0 <= acc <= 1
    assert "val_accuracy" in rows["transformer pos_encoding=learned"]["lengths"]["4"]
    for name in results["plots"]:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size[0] > 100
    assert set(results["plots"]) == {"length.png", "length_tokens.png", "loss.png"}
    assert "refused" in proc.stdout and "transformer pos_encoding=rope" in proc.stdout
    assert proc.stderr.count("[") >= 3  # one progress line per finished run


def test_match_params_brings_widths_to_the_first_models_count(tmp_path):
    results = compare(
        ["lstm", "transformer"],
        "parity",
        steps=1,
        batch_size=4,
        match_params=True,
        sets={"hidden_size": "48", "embed_dim": "48", "n_layer": "1", "val_size": "8"},
        out=tmp_path / "cmp",
    )
    lstm, transformer = results["variants"]
    assert "n_embd" in transformer["settings"]
    assert abs(transformer["params"] - lstm["params"]) < 0.15 * lstm["params"]
    built = zoo_core.load(
        tmp_path / "cmp" / f"transformer_n_embd-{transformer['settings']['n_embd']}-seed0"
    )
    assert zoo_core.api.count_parameters(built.model) == transformer["params"]


def test_data_fractions_sweep_the_lm_training_split(tmp_path):
    results = compare(
        ["lstm"],
        "lm",
        train_length=16,
        steps=2,
        batch_size=4,
        data_fractions=[0.01, 1.0],
        sets={"hidden_size": "8", "embed_dim": "8", "num_layers": "1"},
        out=tmp_path / "cmp",
    )
    assert [v["settings"] for v in results["variants"]] == [
        {"train_fraction": "0.01"},
        {"train_fraction": "1.0"},
    ]
    assert "data_fraction.png" in results["plots"]
    assert all("val_loss" in r["eval"]["16"] for r in results["runs"])


def test_sets_split_into_fixed_values_and_sweeps():
    assert split_sets({"a": "1", "b": "x, y"}) == ({"a": "1"}, {"b": ["x", "y"]})
    with pytest.raises(ZooError, match="empty value"):
        split_sets({"b": "x,"})
    with pytest.raises(ZooError, match="no compared model"):
        compare(["lstm"], "copy", sets={"n_embd": "8,16"}, steps=1)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--steps", "0", "--steps must be at least 1, not 0"),
        ("--batch-size", "0", "--batch-size must be at least 1, not 0"),
        ("--lr", "-1", "--lr must be positive, not -1.0"),
    ],
)
def test_a_bad_training_budget_is_refused_before_any_run(zoo, tmp_path, option, value, message):
    out = tmp_path / "cmp"
    args = ["compare", "lstm", "--task", "parity", "--steps", "1", option, value, "--out", out]
    proc = zoo(*args, *LSTM_TINY, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"Error: {message}"
    assert not out.exists()


def test_when_every_run_fails_compare_exits_with_the_first_error(zoo, tmp_path):
    out = tmp_path / "cmp"
    proc = zoo(
        "compare", "lstm", "--task", "parity", "--steps", "1", "--set", "log_interval=0",
        "--seeds", "2", "--out", out, *LSTM_TINY, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: every run failed") and "log_interval must be at least 1" in last
    assert "val_accuracy" not in proc.stdout  # no table of dashes
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 2 and all("log_interval" in r["error"] for r in runs)


def test_lstm_mixer_carries_its_state_through_forward_step():
    torch.manual_seed(0)
    config = TransformerConfig(
        vocab_size=20,
        n_layer=2,
        n_head=2,
        n_embd=16,
        context_length=32,
        pos_encoding="sinusoidal",
        mixer="lstm",
    )
    model = TransformerLM(config).double().eval()
    assert not any("qkv" in name for name, _ in model.named_parameters())
    x = torch.randint(20, (2, 12))
    first, state = model.forward_step(x[:, :5])
    second, state = model.forward_step(x[:, 5:6], state)
    third, state = model.forward_step(x[:, 6:], state)
    assert torch.allclose(model(x), torch.cat([first, second, third], dim=1))
