"""The zoo's own studies: LSTM against Transformer, each one function of a StudyContext.

Each names the settings of its three sizes with ``ctx.pick(quick, cpu, cuda)``: ``quick`` runs a
few steps with the ``cpu`` size's models, variants and lengths (so its tables have the same rows
and columns), ``cpu`` is the recorded study, ``cuda`` a bigger one for a GPU. The doc of every
study, with the literature beside it, is ``docs/studies.md``.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from zoo_core import artifacts
from zoo_core.artifact import load_local
from zoo_core.compare import format_cell, interval95
from zoo_core.plot import line_chart
from zoo_core.studies import context as usage
from zoo_core.studies.base import StudyContext

MODELS = ["lstm", "transformer"]


def _seeds(ctx: StudyContext) -> int:
    return ctx.pick(2, 3, 3)


def _synthetic(ctx: StudyContext, **sets: str) -> dict[str, str]:
    """Settings of a synthetic task's comparison: fewer validation examples when quick."""
    return {"val_size": ctx.pick("32", "512", "2000"), **sets}


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "ci95": interval95(values),
        "n": len(values),
    }


def _cell(values: list[float], digits: int = 3) -> str:
    return format_cell({"v": _spread(values)}, "v", "ci95", digits) if values else "-"


def _runs(results: dict[str, Any], label: str) -> list[tuple[dict[str, Any], Path]]:
    """The finished runs of variant ``label`` with their folders."""
    folder = Path(results["folder"])
    return [
        (run, folder / run["folder"])
        for run in results["runs"]
        if run["variant"] == label and "error" not in run
    ]


# -- the first round, moved onto `zoo study` ---------------------------------------------------
def long_range(ctx: StudyContext) -> None:
    """Copy eight symbols across a gap of 0, 16 or 64 blanks."""
    width = ctx.pick("64", "64", "128")
    results = ctx.compare(
        "copy",
        MODELS,
        task="copy",
        train_length=8,
        steps=ctx.pick(3, 1000, 4000),
        seeds=_seeds(ctx),
        batch_size=32,
        match_params=True,
        sets=_synthetic(
            ctx,
            delay=ctx.pick("0,16,64", "0,16,64", "0,16,64,256"),
            n_layer="2",
            n_embd=width,
            hidden_size=width,
            embed_dim=width,
        ),
    )
    ctx.comparison_tables("accuracy", results)


def positions(ctx: StudyContext) -> None:
    """Copy trained on lengths 2 to 8, evaluated to 24, per positional encoding."""
    results = ctx.compare(
        "copy",
        ["transformer", "lstm"],
        task="copy",
        train_length=ctx.pick(8, 8, 16),
        eval_lengths=ctx.pick([4, 8, 12, 16, 24], [4, 8, 12, 16, 24], [8, 16, 24, 32, 64]),
        steps=ctx.pick(3, 1000, 4000),
        seeds=_seeds(ctx),
        batch_size=32,
        match_params=True,
        sets=_synthetic(
            ctx,
            min_length="2",
            pos_encoding="learned,sinusoidal,rope,alibi,none",
            n_layer="2",
            n_embd="64",
            hidden_size="64",
            embed_dim="64",
        ),
    )
    ctx.comparison_tables("accuracy", results)


def mixer_lm(ctx: StudyContext) -> None:
    """Language modelling: attention or an LSTM inside the transformer block, and the LSTM."""
    results = ctx.compare(
        "lm",
        ["transformer", "lstm"],
        task="lm",
        train_length=ctx.pick(64, 64, 256),
        steps=ctx.pick(3, 300, 3000),
        seeds=_seeds(ctx),
        batch_size=32,
        match_params=True,
        sets={
            "mixer": "attention,lstm",
            "n_layer": "2",
            "n_embd": ctx.pick("64", "64", "256"),
            "hidden_size": ctx.pick("128", "128", "512"),
            "embed_dim": ctx.pick("128", "128", "512"),
        },
    )
    ctx.comparison_tables("val-loss", results)


def mixer_parity(ctx: StudyContext) -> None:
    """Parity of 2 to 16 bits, evaluated to 64: attention or LSTM mixer, and the LSTM."""
    results = ctx.compare(
        "parity",
        ["transformer", "lstm"],
        task="parity",
        train_length=16,
        eval_lengths=[8, 16, 32, 64],
        steps=ctx.pick(3, 1000, 4000),
        seeds=_seeds(ctx),
        batch_size=32,
        match_params=True,
        sets=_synthetic(
            ctx,
            min_length="2",
            mixer="attention,lstm",
            n_layer="2",
            n_embd="64",
            hidden_size="64",
            embed_dim="64",
        ),
    )
    ctx.comparison_tables("accuracy", results, tokens=False)  # one answer token: the same


def data_size(ctx: StudyContext) -> None:
    """Language modelling on 1%, 10% and 100% of the text, each fraction trained to its best
    validation loss (early stopping), not for a fixed number of steps."""
    results = ctx.compare(
        "lm",
        MODELS,
        task="lm",
        train_length=64,
        data_fractions=[0.01, 0.1, 1.0],
        steps=ctx.pick(6, 1000, 10000),  # an upper bound: early stopping ends each run
        seeds=_seeds(ctx),
        batch_size=32,
        match_params=True,
        sets={
            "early_stopping": ctx.pick("1", "4", "5"),
            "eval_interval": ctx.pick("2", "50", "200"),
            "n_layer": "2",
            "n_embd": ctx.pick("48", "48", "256"),
            "hidden_size": ctx.pick("96", "96", "512"),
            "embed_dim": ctx.pick("96", "96", "512"),
        },
    )
    rows = []
    for row in results["summary"]:
        runs = _runs(results, row["label"])
        steps = [float(_steps_trained(d)) for _, d in runs]
        stopped = sum(_stopped_early(d) for _, d in runs)
        cell = next(iter(row["lengths"].values()), {})
        rows.append(
            [
                row["label"],
                f"{row['params']:,}",
                _cell(steps, 0),
                f"{stopped} of {len(runs)}",
                format_cell(cell, results["metric"], "ci95"),
            ]
        )
    ctx.table(
        "best-val-loss",
        ["variant", "params", "steps trained", "stopped early", "best val_loss"],
        rows,
    )


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    return artifacts.read_metrics(run_dir)


def _steps_trained(run_dir: Path) -> int:
    return max((r.get("step", 0) for r in _metrics(run_dir)), default=0)


def _stopped_early(run_dir: Path) -> bool:
    return any(r.get("early_stop") for r in _metrics(run_dir))


# -- the second round --------------------------------------------------------------------------
def mqar(ctx: StudyContext) -> None:
    """Zoology's multi-query associative recall: trained on 4 to 16 key-value pairs (one count
    per batch), evaluated at each count; the Transformer and the LSTM at two widths (one
    comparison per width: the LSTM ties its embedding to its hidden state, so both follow).

    The Transformer starts from PyTorch's own initialisation with an untied output head
    (``init=pytorch``, ``tie_weights=false``): with GPT-2's N(0, 0.02) and tied embeddings, the
    64-wide model had formed no recall circuit after 1,500 steps (docs/studies.md, MQAR)."""
    pairs = ctx.pick([4, 8, 16], [4, 8, 16], [4, 8, 16, 32, 64])
    widths = ctx.pick([64, 128], [64, 128], [64, 128, 256, 512])
    parts = []
    for width in widths:
        parts.append(
            ctx.compare(
                f"width-{width}",
                ["transformer", "lstm"],
                task="mqar",
                train_length=max(pairs),
                eval_lengths=pairs,
                steps=ctx.pick(3, 1500, 4000),
                seeds=_seeds(ctx),
                batch_size=32,
                lr=1e-3,
                sets=_synthetic(
                    ctx,
                    vocab_size=str(4 * max(pairs)),  # half keys, half values: 2 keys per pair
                    min_length=str(min(pairs)),
                    n_layer="2",
                    num_layers="2",
                    n_embd=str(width),
                    hidden_size=str(width),
                    embed_dim=str(width),
                    tie_weights="false",
                    init="pytorch",
                ),
            )
        )
    merged = {**parts[0], "summary": []}
    for part, width in zip(parts, widths, strict=True):
        merged["summary"] += [
            {**row, "label": f"{row['label']} width={width}"} for row in part["summary"]
        ]
    ctx.comparison_tables("accuracy", merged)
    series = {
        row["label"]: [
            (float(n), row["lengths"][str(n)].get("val_token_accuracy", {}).get("mean"))
            for n in pairs
        ]
        for row in merged["summary"]
    }
    path = ctx.folder / "mqar.png"
    line_chart(
        series,
        path,
        title="MQAR: queries answered right, by key-value pairs (mean of seeds)",
        xlabel="key-value pairs",
        ylabel="query accuracy",
        log_x=True,
        y_range=(0.0, 1.0),
        x_ticks=[float(n) for n in pairs],
    )
    ctx.plots.append(path.name)


def induction(ctx: StudyContext) -> None:
    """Repeated random tokens: a 2-layer transformer per positional encoding and the LSTM,
    trained on lengths up to one length, evaluated at 1x to 8x; and when the loss falls (the
    phase change). The length varies from batch to batch (a quarter of it up to all of it): at
    one fixed length, "copy the token one period back" solves the task by position alone, which
    says nothing at another length (a first run here learned exactly that)."""
    train = ctx.pick(16, 16, 64)
    results = ctx.compare(
        "repeat",
        ["transformer", "lstm"],
        task="repeated-tokens",
        train_length=train,
        eval_lengths=[train, 2 * train, 4 * train, 8 * train],
        steps=ctx.pick(3, 1000, 3000),
        seeds=_seeds(ctx),
        batch_size=32,
        match_params=True,
        sets=_synthetic(
            ctx,
            tie_weights="false",
            init="pytorch",  # as in mqar: GPT-2's initialisation learns no induction head here
            vocab_size=ctx.pick("128", "128", "512"),
            val_size=ctx.pick("32", "256", "1000"),
            min_length=str(train // 4),
            pos_encoding="learned,sinusoidal,rope,alibi,none",
            n_layer="2",
            n_embd="64",
            hidden_size="64",
            embed_dim="64",
        ),
    )
    ctx.comparison_tables("accuracy", results)
    rows = []
    for row in results["summary"]:
        firsts, lasts, drops = [], [], []
        for run, _ in _runs(results, row["label"]):
            curve = [(s, v) for s, v in run["loss_curve"] if math.isfinite(v)]
            if not curve:
                continue
            first, last = curve[0][1], curve[-1][1]
            firsts.append(first)
            lasts.append(last)
            # The phase change: the first logged step whose loss is below half the first one.
            below = [s for s, v in curve if v < first / 2]
            if below:
                drops.append(float(below[0]))
        runs = len(firsts)
        rows.append(
            [
                row["label"],
                _cell(firsts, 2),
                _cell(lasts, 2),
                _cell(drops, 0) + (f" ({len(drops)} of {runs})" if len(drops) < runs else ""),
            ]
        )
    ctx.table(
        "phase-change",
        ["variant", "first loss", "last loss", "step the loss halves"],
        rows,
    )


CONTEXT_MARKS = (1, 4, 16, 64, 128)


def context_usage(ctx: StudyContext) -> None:
    """The loss at each position of a 64-token window on the default text, for the LSTM and
    the Transformer at the same size, at two budgets; and each one's effective context."""
    seq_len = ctx.pick(64, 64, 512)
    budgets = ctx.pick("3,6", "150,450", "2000,8000")
    results = ctx.compare(
        "lm",
        MODELS,
        task="lm",
        train_length=seq_len,
        seeds=_seeds(ctx),
        batch_size=32,
        match_params=True,
        sets={
            "steps": budgets,
            "n_layer": "2",
            "n_embd": ctx.pick("64", "64", "256"),
            "hidden_size": ctx.pick("96", "96", "512"),
            "embed_dim": ctx.pick("96", "96", "512"),
        },
    )
    marks = [p for p in CONTEXT_MARKS if p < seq_len] + [seq_len]
    rows, curves, measured = [], {}, {}
    for row in results["summary"]:
        found = []
        for _, run_dir in _runs(results, row["label"]):
            artifact = load_local(run_dir, device=ctx.device)
            found.append(usage.per_position(artifact, 32, seq_len))
        measured[row["label"]] = found
        if not found:
            rows.append([row["label"], f"{row['params']:,}"] + ["-"] * (len(marks) + 1))
            continue
        curves[row["label"]] = [
            statistics.fmean(f["loss_by_position"][i] for f in found) for i in range(seq_len)
        ]
        rows.append(
            [row["label"], f"{row['params']:,}"]
            + [_cell([f["loss_by_position"][p - 1] for f in found]) for p in marks]
            + [_cell([float(f["effective_context"]) for f in found], 1)]
        )
    ctx.table(
        "loss-by-position",
        ["variant", "params", *[f"loss @{p}" for p in marks], "effective context"],
        rows,
    )
    ctx.results["loss_by_position"] = measured
    path = ctx.folder / "loss_by_position.png"
    usage.plot(curves, path, f"validation loss by position (window {seq_len}), mean of seeds")
    ctx.plots.append(path.name)


# -- translation: the seq2seq task ---------------------------------------------------------------
# A CPU-sized encoder-decoder: 2 + 2 layers, 64 wide. Dropout off: the data has no noise.
_TRANSLATOR = {"n_embd": "64", "n_head": "4", "ffn": "256", "dropout": "0.0"}
_TRANSLATOR_CUDA = {"n_embd": "256", "n_head": "8", "ffn": "1024", "dropout": "0.1"}


def _translation_table(ctx: StudyContext, key: str, results: dict[str, Any]) -> None:
    """Exact match, token accuracy and BLEU of greedy decoding, ``mean ± 95% interval``."""
    rows = []
    for row in results["summary"]:
        cell = row["lengths"].get("-", {})
        rows.append(
            [
                row["label"],
                f"{row['params']:,}",
                "-" if row["train_seconds"] is None else f"{row['train_seconds']:.0f}",
                format_cell(cell, "val_exact_match", "ci95", 3),
                format_cell(cell, "val_token_accuracy", "ci95", 3),
                format_cell(cell, "val_bleu", "ci95", 1),
            ]
        )
    ctx.table(
        key,
        ["variant", "params", "train s", "exact match", "token accuracy", "BLEU"],
        rows,
    )


def _domhan(ctx: StudyContext, corpus: str, steps: int) -> None:
    """Domhan (2018)'s grid: self-attention or an LSTM in the encoder, and in the decoder, inside
    the same Transformer blocks (the decoder keeps its attention over the source)."""
    results = ctx.compare(
        corpus,
        ["transformer-seq2seq"],
        task="seq2seq",
        steps=ctx.pick(3, steps, 4000),
        seeds=_seeds(ctx),
        batch_size=64,
        lr=ctx.pick(3e-3, 3e-3, 1e-3),
        sets={
            "corpus": corpus,
            "encoder": "attention,lstm",
            "decoder": "attention,lstm",
            "warmup": "100",
            "eval_interval": "1000000",  # the final evaluation alone
            "val_size": ctx.pick("32", "1000", "4000"),
            **ctx.pick(_TRANSLATOR, _TRANSLATOR, _TRANSLATOR_CUDA),
        },
    )
    _translation_table(ctx, "grid", results)


def domhan_scan(ctx: StudyContext) -> None:
    """Domhan's grid on SCAN's simple split."""
    _domhan(ctx, "scan", 400)


def domhan_svo_sov(ctx: StudyContext) -> None:
    """Domhan's grid on the svo-sov translation: the verb moved past the object, phrase chains
    reversed, and the verb's agreement with a subject the object stands between."""
    _domhan(ctx, "svo-sov", 300)


def _scan_split(ctx: StudyContext, split: str) -> None:
    """SCAN split ``split``: the Transformer encoder-decoder with each positional encoding, and
    the LSTM encoder-decoder with attention, at the same parameter count."""
    results = ctx.compare(
        split,
        ["transformer-seq2seq", "lstm-seq2seq"],
        task="seq2seq",
        steps=ctx.pick(3, 300, 4000),
        seeds=_seeds(ctx),
        batch_size=64,
        lr=ctx.pick(3e-3, 3e-3, 1e-3),
        match_params=True,
        sets={
            "split": split,
            "pos_encoding": "sinusoidal,learned,rope,alibi,none",
            "warmup": "100",
            "eval_interval": "1000000",  # the final evaluation alone
            "val_size": ctx.pick("32", "500", "4000"),
            **ctx.pick(_TRANSLATOR, _TRANSLATOR, _TRANSLATOR_CUDA),
            "embed_dim": ctx.pick("64", "64", "256"),
            "hidden_size": ctx.pick("64", "64", "256"),
        },
    )
    _translation_table(ctx, "accuracy", results)


def scan_length(ctx: StudyContext) -> None:
    """SCAN's length split: trained on up to 22 actions, tested on 24 to 48."""
    _scan_split(ctx, "length")


def scan_addprim(ctx: StudyContext) -> None:
    """SCAN's addprim-jump split: "jump" seen alone, tested in every composition."""
    _scan_split(ctx, "addprim-jump")
