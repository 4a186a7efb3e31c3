"""GPT-2 as `transformers` publishes it (``model_type: gpt2``), imported onto the zoo's decoder.

`transformers` stores GPT-2's projections as ``Conv1D`` weights, (in, out): the zoo's ``Linear``
layers hold them transposed. Its causal-mask buffers (``attn.bias``, ``attn.masked_bias``) are
dropped, and its output head is the token embedding, tied as in the zoo's decoder.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from zoo_core import ForeignModel, Imported, ZooError

_VARIANTS = {(12, 12, 768): "gpt2-small", (24, 16, 1024): "gpt2-medium"}
_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}
_TRANSPOSED = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
_RENAME = {
    "attn.c_attn": "attn.qkv",
    "attn.c_proj": "attn.proj",
    "mlp.c_fc": "mlp.fc",
    "mlp.c_proj": "mlp.proj",
    "ln_1": "ln_1",
    "ln_2": "ln_2",
}
_LAYER = re.compile(r"h\.(\d+)\.(.+)\.(weight|bias)")


def _whole(config: dict[str, Any], key: str, default: Any = None) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1 << 20:
        raise ZooError(f"its config's {key} is {value!r}, not a whole number from 1 to 2**20")
    return value


def _unsupported(config: dict[str, Any]) -> None:
    """Refuse what the zoo's decoder does not compute as `transformers` does."""
    n_embd = config.get("n_embd")
    checks = [
        (
            config.get("n_inner") in (None, 4 * n_embd),
            "an MLP width (n_inner) other than 4 * n_embd",
        ),
        (config.get("scale_attn_weights", True) is True, "unscaled attention"),
        (not config.get("scale_attn_by_inverse_layer_idx", False), "attention scaled by layer"),
        (not config.get("add_cross_attention", False), "cross-attention"),
        (
            config.get("tie_word_embeddings", True) is True,
            "an output head apart from the embedding",
        ),
    ]
    for ok, what in checks:
        if not ok:
            raise ZooError(f"its config asks for {what}, which the zoo's decoder does not have")


def import_gpt2(foreign: ForeignModel) -> Imported:
    """A `transformers` GPT-2 (GPT2LMHeadModel or GPT2Model weights) as a zoo decoder."""
    config = foreign.config
    n_layer, n_head = _whole(config, "n_layer"), _whole(config, "n_head")
    n_embd, vocab = _whole(config, "n_embd"), _whole(config, "vocab_size")
    positions = _whole(config, "n_positions", 1024)
    _unsupported(config)
    activation = config.get("activation_function", "gelu_new")
    if activation not in _ACTIVATIONS:
        raise ZooError(
            f"its activation_function {activation!r} is not one the zoo's decoder has "
            f"({', '.join(_ACTIVATIONS)})"
        )
    eps = config.get("layer_norm_epsilon", 1e-5)
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 1:
        raise ZooError(f"its layer_norm_epsilon {eps!r} is not a number in (0, 1)")
    if foreign.tokenizer is None:
        raise ZooError(
            "it has no tokenizer.json, and a language model is used through its own tokenizer; "
            "ask its owner to add one (tokenizers' save or transformers' save_pretrained)"
        )
    model_config = {
        "vocab_size": vocab,
        "context_length": positions,
        "n_layer": n_layer,
        "n_head": n_head,
        "n_embd": n_embd,
        "dropout": 0.0,
        "bias": True,
        "pos_encoding": "learned",
        "tie_weights": True,
        "mixer": "attention",
        "activation": _ACTIVATIONS[activation],
        "layer_norm_eps": float(eps),
    }
    return Imported(
        model=_VARIANTS.get((n_layer, n_head, n_embd), "transformer"),
        task="lm",
        convert=_convert,
        model_config=model_config,
        task_state={"data": foreign.repo, "seq_len": positions},
        tokenizer="bpe",
        tokenizer_data={"hf_tokenizer": foreign.tokenizer},
    )


def _convert(name: str, tensor: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """One `transformers` GPT-2 tensor as the zoo decoder's (none for buffers it recomputes)."""
    name = name.removeprefix("transformer.")
    if name == "lm_head.weight" or name.endswith((".attn.bias", ".attn.masked_bias")):
        return []  # the tied head (the embedding), and causal masks
    if name in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"):
        return [(name, tensor)]
    match = _LAYER.fullmatch(name)
    if match is None or match.group(2) not in _RENAME:
        return [(name, tensor)]  # unknown: the header check names it
    layer, part, kind = match.groups()
    if part in _TRANSPOSED and kind == "weight":
        tensor = tensor.t()  # Conv1D (in, out) -> Linear (out, in)
    return [(f"blocks.{layer}.{_RENAME[part]}.{kind}", tensor)]
