"""The zoo's LSTM plugin: registers the `lstm` family, language models and attention
encoder-decoders. Imports no torch (specs name code lazily)."""

from zoo_core import ModelSpec, hookimpl

_MODEL = "zoo_lstm.model:LSTMLanguageModel"
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
_PAPER = "Hochreiter & Schmidhuber, Long Short-Term Memory (1997)"
_SEQ2SEQ = "zoo_lstm.seq2seq:LSTMSeq2Seq"
_LUONG = "Luong et al., Effective Approaches to Attention-based Neural Machine Translation (2015)"
_BAHDANAU = "Bahdanau et al., Neural Machine Translation by Jointly Learning to Align and Translate"
_SEQ2SEQ_WIDTH = {"width": "hidden_size", "tied_widths": ("embed_dim",)}
# The width is the hidden size; an embedding as wide as it stays so (the weights are tied).
_WIDTH = {"width": "hidden_size", "tied_widths": ("embed_dim",)}


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="lstm",
            model=_MODEL,
            tasks=_TASKS,
            family="lstm",
            summary="LSTM language model sized to train in ~3 minutes on a laptop CPU",
            paper=_PAPER,
            **_WIDTH,
            defaults={
                "embed_dim": 256,
                "hidden_size": 256,
                "num_layers": 2,
                "dropout": 0.1,
                "tie_weights": True,
            },
            train_defaults={
                "steps": 800,
                "batch_size": 32,
                "lr": 3e-3,
                "weight_decay": 0.01,
                "seq_len": 128,
            },
        )
    )
    register(
        ModelSpec(
            name="lstm-large",
            model=_MODEL,
            tasks=("lm",),
            family="lstm",
            summary="3-layer, 1024-wide LSTM language model (GPU)",
            paper=_PAPER,
            **_WIDTH,
            defaults={
                "embed_dim": 1024,
                "hidden_size": 1024,
                "num_layers": 3,
                "dropout": 0.25,
                "tie_weights": True,
            },
            train_defaults={"steps": 5000, "batch_size": 64, "lr": 2e-3, "seq_len": 256},
        )
    )
    register(
        ModelSpec(
            name="lstm-seq2seq",
            model=_SEQ2SEQ,
            tasks=("seq2seq",),
            family="lstm",
            summary="encoder-decoder LSTM with Luong attention (dot/general/additive), CPU-sized",
            paper=_LUONG,
            **_SEQ2SEQ_WIDTH,
            defaults={
                "embed_dim": 128,
                "hidden_size": 128,
                "num_layers": 1,
                "attention": "general",
                "dropout": 0.1,
            },
            train_defaults={"steps": 2000, "batch_size": 64, "lr": 3e-3, "warmup": 50},
        )
    )
    register(
        ModelSpec(
            name="lstm-seq2seq-bahdanau",
            model=_SEQ2SEQ,
            tasks=("seq2seq",),
            family="lstm",
            summary="encoder-decoder LSTM, bidirectional encoder, additive (Bahdanau) attention",
            paper=_BAHDANAU + " (2015)",
            **_SEQ2SEQ_WIDTH,
            defaults={
                "embed_dim": 128,
                "hidden_size": 128,
                "num_layers": 1,
                "bidirectional": True,
                "attention": "additive",
                "dropout": 0.1,
            },
            train_defaults={"steps": 2000, "batch_size": 64, "lr": 3e-3, "warmup": 50},
        )
    )
