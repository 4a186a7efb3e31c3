"""Cached versus uncached decoding: tokens per second of `zoo generate` on a language model.

    python benchmarks/generation.py                   # the default `transformer`, random weights
    python benchmarks/generation.py --run runs/<run>  # a trained run folder
    python benchmarks/generation.py --set pos_encoding=learned --tokens 500

With the key/value cache each new token runs the model on that token alone; without it, the
whole prefix is recomputed for every token, so the cost of a token grows with the length.
An LSTM's cache is its hidden state: `--model lstm` compares carrying it with rereading the text.
"""

from __future__ import annotations

import argparse
import time

import torch

import zoo_core
from zoo_core.tasks.lm import LanguageModeling


def _model_and_task(args: argparse.Namespace):
    if args.run:
        artifact = zoo_core.load(args.run)
        return artifact.model, artifact.task
    task = LanguageModeling()
    task.setup(None)
    overrides = dict(kv.split("=", 1) for kv in args.set)
    torch.manual_seed(0)
    model = zoo_core.create_model(args.model, vocab_size=task.tokenizer.vocab_size, **overrides)
    return model.eval(), task


def _time(task, model, tokens: int, use_cache: bool) -> tuple[float, str]:
    start = time.perf_counter()
    text = task.generate(model, prompt="def ", length=tokens, temperature=0, use_cache=use_cache)
    return time.perf_counter() - start, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="transformer", help="a registered language model")
    parser.add_argument("--run", help="a trained run folder instead of random weights")
    parser.add_argument("--tokens", type=int, default=500, help="new tokens to generate")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model config field (repeatable), e.g. pos_encoding=alibi",
    )
    args = parser.parse_args()
    model, task = _model_and_task(args)
    _time(task, model, 8, True)  # warm up
    cached_s, cached_text = _time(task, model, args.tokens, True)
    full_s, full_text = _time(task, model, args.tokens, False)
    shown = ("n_layer", "num_layers", "n_embd", "hidden_size", "pos_encoding", "context_length")
    config = ", ".join(
        f"{key}={getattr(model.config, key)}" for key in shown if hasattr(model.config, key)
    )
    print(
        f"model: {args.run or args.model} ({config}); "
        f"{args.tokens} new tokens, greedy, {torch.get_num_threads()} threads"
    )
    print(f"with KV cache:    {args.tokens / cached_s:8.1f} tokens/s ({cached_s:.2f} s)")
    print(f"without cache:    {args.tokens / full_s:8.1f} tokens/s ({full_s:.2f} s)")
    print(f"speed-up:         {full_s / cached_s:8.1f}x")
    print(f"same text:        {cached_text == full_text}")


if __name__ == "__main__":
    main()
