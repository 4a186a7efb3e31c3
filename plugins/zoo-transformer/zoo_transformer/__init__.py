"""The zoo's Transformer plugin: a GPT-style decoder (`transformer`, `gpt2-*`, `gpt3-*`), an
encoder (`transformer-encoder`) and an encoder-decoder (`transformer-seq2seq`). Imports no torch
(specs name code lazily)."""

from zoo_core import ImporterSpec, ModelSpec, PretrainedWeights, hookimpl

_DECODER = "zoo_transformer.model:TransformerLM"
_ENCODER = "zoo_transformer.model:TransformerEncoder"
_SEQ2SEQ = "zoo_transformer.seq2seq:TransformerSeq2Seq"
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
_GPT3 = "Brown et al., Language Models are Few-Shot Learners (2020), Table 2.1"
# The width is split into n_head heads, and rope rotates pairs of a head's dimensions: whole
# heads of an even size.
_WIDTH = {"width": "n_embd", "width_multiple_of": (2, "n_head")}


# OpenAI's GPT-2 weights as `transformers` publishes them, converted by the gpt2 importer
# (importers.py), pinned to a commit of each repo.
_OPENAI = {
    "gpt2-small": PretrainedWeights(
        "openai-community/gpt2",
        revision="607a30d783dfa663caf39e06633721c8d4cfcd7e",
        summary="OpenAI's GPT-2 (124M), WebText; its byte-level BPE tokenizer",
    ),
    "gpt2-medium": PretrainedWeights(
        "openai-community/gpt2-medium",
        revision="6dcaa7a952f72f9298047fd5137cd6e4f05f41da",
        summary="OpenAI's GPT-2 medium (355M), WebText; its byte-level BPE tokenizer",
    ),
}


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
        pretrained={"openai": _OPENAI[name]},
    )


# Table 2.1 of the GPT-3 paper: name, layers, width, heads, batch size in tokens, learning rate,
# the paper's parameter count. For XL the table gives 24 heads of size 128, which do not make its
# width of 2048 (24 x 128 = 3072, and 2048 / 24 is no whole head); its 1.3B parameters are those
# of a 2048-wide attention, so this is 16 heads of the table's size 128.
GPT3_TABLE = (
    ("gpt3-small", 12, 768, 12, 0.5e6, 6.0e-4, "125M"),
    ("gpt3-medium", 24, 1024, 16, 0.5e6, 3.0e-4, "350M"),
    ("gpt3-large", 24, 1536, 16, 0.5e6, 2.5e-4, "760M"),
    ("gpt3-xl", 24, 2048, 16, 1.0e6, 2.0e-4, "1.3B"),
    ("gpt3-2.7b", 32, 2560, 32, 1.0e6, 1.6e-4, "2.7B"),
)
_GPT3_CONTEXT = 2048
_GPT3_VOCAB = 50257  # GPT-2's byte-level BPE, which GPT-3 reuses


def _gpt3(name: str, n_layer: int, n_embd: int, n_head: int, tokens: float, lr: float, size: str):
    # Memory to train: weights, gradients and AdamW's two moments in fp32 take 16 bytes a
    # parameter (`zoo info` prints it); activations of 2048-token sequences come on top.
    return ModelSpec(
        name=name,
        model=_DECODER,
        tasks=("lm",),
        family="transformer",
        summary=(
            f"GPT-3 {size}: {n_layer} layers, {n_embd} wide, {n_head} heads of "
            f"{n_embd // n_head}, context 2048 (GPU)"
        ),
        paper=_GPT3,
        **_WIDTH,
        defaults={
            "n_layer": n_layer,
            "n_head": n_head,
            "n_embd": n_embd,
            "context_length": _GPT3_CONTEXT,
            "vocab_size": _GPT3_VOCAB,  # the tokenizer's size replaces it when training
            "dropout": 0.0,
            "pos_encoding": "learned",
        },
        # The paper's batch of 0.5M or 1M tokens in sequences of 2048, Adam's beta2 of 0.95, a
        # weight decay of 0.1, clipping at 1.0 and a warmup over its first 375M tokens.
        train_defaults={
            "batch_size": round(tokens / _GPT3_CONTEXT),
            "lr": lr,
            "seq_len": _GPT3_CONTEXT,
            "weight_decay": 0.1,
            "beta2": 0.95,
            "grad_clip": 1.0,
            "steps": 5000,
            "warmup": round(375e6 / tokens),
        },
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
    for row in GPT3_TABLE:
        register(_gpt3(*row))
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
    register(
        ModelSpec(
            name="transformer-seq2seq",
            model=_SEQ2SEQ,
            tasks=("seq2seq",),
            family="transformer",
            summary="Transformer encoder-decoder sized for a CPU; encoder/decoder attention or lstm",
            paper=_ATTENTION,
            **_WIDTH,
            defaults={
                "encoder_layers": 2,
                "decoder_layers": 2,
                "n_embd": 128,
                "n_head": 4,
                "ffn": 256,
                "dropout": 0.1,
                "norm": "pre",
            },
            train_defaults={"steps": 2000, "batch_size": 64, "lr": 1e-3, "warmup": 100},
        )
    )
    register(
        ModelSpec(
            name="transformer-seq2seq-base",
            model=_SEQ2SEQ,
            tasks=("seq2seq",),
            family="transformer",
            summary="the paper's base model: 6+6 layers, 512 wide, 8 heads, FFN 2048 (GPU)",
            paper=_ATTENTION,
            **_WIDTH,
            defaults={
                "encoder_layers": 6,
                "decoder_layers": 6,
                "n_embd": 512,
                "n_head": 8,
                "ffn": 2048,
                "dropout": 0.1,
                "norm": "post",
                "share_embeddings": True,
                # The paper's shared BPE vocabulary; the tokenizer's size replaces it in training.
                "source_vocab_size": 37000,
                "target_vocab_size": 37000,
            },
            # The paper's Adam (beta2 0.98), label smoothing 0.1 and one shared vocabulary.
            train_defaults={
                "steps": 100000,
                "batch_size": 128,
                "lr": 7e-4,
                "warmup": 4000,
                "beta2": 0.98,
                "label_smoothing": 0.1,
                "share_vocab": True,
                "tokenizer": "bpe",
                "vocab_size": 37000,
            },
        )
    )


@hookimpl
def register_importers(register):
    register(
        ImporterSpec(
            name="transformers-gpt2",
            format="transformers",
            model_type="gpt2",
            importer="zoo_transformer.importers:import_gpt2",
            summary="GPT-2 weights and tokenizer in the transformers layout (openai-community/gpt2)",
        )
    )
