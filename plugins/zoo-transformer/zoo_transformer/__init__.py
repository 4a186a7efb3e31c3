"""The zoo's Transformer plugin: a GPT-style decoder (`transformer`, `gpt2-*`) and an encoder
(`transformer-encoder`), and the `word` tokenizer. Imports no torch (specs name code lazily)."""

from zoo_core import ModelSpec, TokenizerSpec, hookimpl

_DECODER = "zoo_transformer.model:TransformerLM"
_ENCODER = "zoo_transformer.model:TransformerEncoder"
# Language modelling, then the synthetic long-range tasks of the core.
_TASKS = (
    "lm",
    "copy",
    "selective-copy",
    "associative-recall",
    "parity",
    "induction",
    "mqar",
    "repeated-tokens",
)
_GPT2 = "Radford et al., Language Models are Unsupervised Multitask Learners (2019)"
_ATTENTION = "Vaswani et al., Attention Is All You Need (2017)"
# The width is split into n_head heads, and rope rotates pairs of a head's dimensions: whole
# heads of an even size.
_WIDTH = {"width": "n_embd", "width_multiple_of": (2, "n_head")}


def _gpt2(name: str, n_layer: int, n_head: int, n_embd: int, summary: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        model=_DECODER,
        tasks=("lm",),
        family="transformer",
        summary=summary,
        paper=_GPT2,
        **_WIDTH,
        defaults={
            "n_layer": n_layer,
            "n_head": n_head,
            "n_embd": n_embd,
            "context_length": 1024,
            "dropout": 0.0,
            "pos_encoding": "learned",
        },
        train_defaults={"steps": 5000, "batch_size": 16, "lr": 6e-4, "warmup": 200},
    )


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="transformer",
            model=_DECODER,
            tasks=_TASKS,
            family="transformer",
            summary="GPT-style decoder sized to train in ~3 minutes on a laptop CPU",
            paper=_GPT2,
            **_WIDTH,
            defaults={
                "n_layer": 4,
                "n_head": 4,
                "n_embd": 128,
                "context_length": 64,
                "dropout": 0.0,
                "pos_encoding": "rope",
            },
            train_defaults={"steps": 500, "batch_size": 32, "lr": 3e-3, "warmup": 50},
        )
    )
    register(_gpt2("gpt2-small", 12, 12, 768, "GPT-2 small: 12 layers, 12 heads, 768 wide (GPU)"))
    register(
        _gpt2("gpt2-medium", 24, 16, 1024, "GPT-2 medium: 24 layers, 16 heads, 1024 wide (GPU)")
    )
    register(
        ModelSpec(
            name="transformer-encoder",
            model=_ENCODER,
            tasks=("sequence-classification",),
            family="transformer",
            summary="bidirectional Transformer encoder with a pooled classification head",
            paper=_ATTENTION,
            **_WIDTH,
            defaults={
                "n_layer": 2,
                "n_head": 4,
                "n_embd": 64,
                "context_length": 128,
                "dropout": 0.0,
                "pos_encoding": "rope",
            },
            train_defaults={"steps": 1000, "batch_size": 32, "lr": 2e-3, "warmup": 30},
        )
    )


@hookimpl
def register_tokenizers(register):
    register(
        TokenizerSpec(
            "word",
            "zoo_transformer.tokenizer:WordTokenizer",
            "one token per whitespace-separated word of the training text (vocab_size: the most "
            "frequent)",
        )
    )
