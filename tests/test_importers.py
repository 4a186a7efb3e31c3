"""The register_importers hook, and the importers' refusals of what they cannot compute exactly.

The end-to-end checks against real `transformers` models, through a Hub mirror, are in
tests/hub/test_hub_import.py.
"""

from __future__ import annotations

import json

import pytest

from zoo_core import ForeignModel, ImporterSpec, ZooError, hookimpl
from zoo_core.plugins import get_catalog
from zoo_core.scaffold import check_plugins


def test_the_zoo_plugins_register_gpt2_and_resnet_importers():
    catalog = get_catalog()
    assert catalog.importer_for("transformers", "gpt2").plugin == "transformer"
    assert catalog.importer_for("transformers", "resnet").plugin == "resnet"
    assert catalog.importer_for("transformers", "llama") is None
    assert "transformers-gpt2" in catalog.plugins["transformer"].importers


def test_an_importer_is_checked_and_its_code_resolved_by_plugins_check(register_plugin, capsys):
    class Broken:
        @hookimpl
        def register_importers(register):
            register(ImporterSpec("bad", "transformers", "bert", "not a reference", "bad"))

    class Missing:
        @hookimpl
        def register_importers(register):
            register(ImporterSpec("missing", "transformers", "t5", "no_such_module:f", "t5"))

    register_plugin(Broken, "broken-importer")
    catalog = register_plugin(Missing, "missing-importer")
    assert "importer must be a 'module:attr' string" in capsys.readouterr().err
    assert "bad" not in catalog.importers and "missing" in catalog.importers
    (report,) = check_plugins("missing-importer")
    assert not report.ok and any("no_such_module" in error for error in report.errors)


def _foreign(config: dict, **extra) -> ForeignModel:
    return ForeignModel("acme/x", "0" * 40, config, {}, **extra)


GPT2 = {"model_type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 8, "vocab_size": 300}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_inner": 16}, "n_inner"),
        ({"scale_attn_by_inverse_layer_idx": True}, "scaled by layer"),
        ({"activation_function": "relu"}, "activation_function 'relu'"),
        ({"tie_word_embeddings": False}, "output head apart"),
        ({"n_layer": "2"}, "n_layer"),
        ({"layer_norm_epsilon": -1}, "layer_norm_epsilon"),
    ],
)
def test_the_gpt2_importer_refuses_what_the_decoder_does_not_compute(change, message):
    from zoo_transformer.importers import import_gpt2

    with pytest.raises(ZooError, match=message):
        import_gpt2(_foreign({**GPT2, **change}, tokenizer="{}"))


def test_the_gpt2_importer_needs_the_tokenizer_and_picks_the_variant():
    from zoo_transformer.importers import import_gpt2

    with pytest.raises(ZooError, match="no tokenizer.json"):
        import_gpt2(_foreign(GPT2))
    small = {**GPT2, "n_layer": 12, "n_head": 12, "n_embd": 768, "vocab_size": 50257}
    plan = import_gpt2(_foreign(small, tokenizer="{}"))
    assert plan.model == "gpt2-small" and plan.model_config["activation"] == "gelu_tanh"


RESNET = {
    "model_type": "resnet",
    "embedding_size": 8,
    "hidden_sizes": [32, 64],
    "depths": [1, 1],
    "layer_type": "bottleneck",
    "id2label": {"0": "a", "1": "b"},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_sizes": [32, 48]}, "hidden_sizes"),
        ({"downsample_in_bottleneck": True}, "downsamples"),
        ({"layer_type": "dense"}, "layer_type"),
        ({"id2label": {"0": "a", "2": "c"}}, "class 1"),
        ({"hidden_act": "gelu"}, "hidden_act"),
    ],
)
def test_the_resnet_importer_refuses_other_layouts(change, message):
    from zoo_resnet.importers import import_resnet

    header = {"classifier.1.weight": ((2, 64), "F32")}
    with pytest.raises(ZooError, match=message):
        import_resnet(ForeignModel("acme/r", "0" * 40, {**RESNET, **change}, header))


def test_the_resnet_importer_reads_the_preprocessor():
    from zoo_resnet.importers import import_resnet

    header = {"classifier.1.weight": ((2, 64), "F32")}
    pre = json.loads(
        '{"crop_pct": 0.875, "size": {"shortest_edge": 224}, "resample": 3,'
        ' "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}'
    )
    plan = import_resnet(ForeignModel("acme/r", "0" * 40, RESNET, header, preprocessor=pre))
    state = plan.task_state
    assert (state["image_size"], state["resize"], state["resample"]) == (224, 256, "bicubic")
    assert state["classes"] == ["a", "b"] and state["std"] == [0.25] * 3
    with pytest.raises(ZooError, match="image_std"):
        bad = {**pre, "image_std": [0, 1, 1]}
        import_resnet(ForeignModel("acme/r", "0" * 40, RESNET, header, preprocessor=bad))
