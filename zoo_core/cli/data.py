"""Embedded data sets written out as files: ``zoo data shapes|text|brackets|scan``."""

from __future__ import annotations

import click

from zoo_core.data import brackets, scan, text


@click.group()
def data() -> None:
    """Embedded data sets, written out as files to look at or to train on."""


@data.command("shapes")
@click.option("--out", required=True, type=click.Path(), help="Folder to write (new or empty).")
@click.option("--num", type=int, default=8000, show_default=True, help="Number of images.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--size", type=int, default=32, show_default=True, help="Width and height in pixels.")
def data_shapes(out: str, num: int, seed: int, size: int) -> None:
    """Write the default image data set (coloured shapes) as one sub-folder of PNGs per class."""
    from zoo_core.data.shapes import write_folder  # here: numpy loads for this command alone

    path = write_folder(out, num=num, seed=seed, size=size)
    click.echo(f"wrote {num} {size}x{size} images to {path}")


@data.command("text")
@click.option("--out", required=True, type=click.Path(), help="File to write (new).")
def data_text(out: str) -> None:
    """Write the default text of language models (Python's pydoc topics) as one UTF-8 file."""
    path, length = text.write_default(out)
    click.echo(f"wrote {text.DEFAULT_TEXT_NAME} ({length:,} characters) to {path}")


@data.command("brackets")
@click.option("--out", required=True, type=click.Path(), help="Folder to write (new or empty).")
def data_brackets(out: str) -> None:
    """Write the default data of text classifiers (balanced brackets or not) as train.jsonl and
    val.jsonl, one {"text", "label"} a line; train on them with `--data OUT/train.jsonl
    --val-data OUT/val.jsonl`."""
    path = brackets.write_default(out)
    train, val = (len(split) for split in brackets.default_splits())
    click.echo(
        f"wrote {train:,} training and {val:,} validation examples to {path / 'train.jsonl'} "
        f"and {path / 'val.jsonl'}"
    )


@data.command("scan")
@click.option("--out", required=True, type=click.Path(), help="Folder to write (new or empty).")
def data_scan(out: str) -> None:
    """Write SCAN, the default data of seq2seq models, as one folder per split (simple, length,
    addprim-jump) of train.jsonl and test.jsonl, one {"source", "target"} a line; train on one
    with `--data OUT/length/train.jsonl --val-data OUT/length/test.jsonl`."""
    path = scan.write_splits(out)
    sizes = ", ".join(
        f"{name} {len(train):,}/{len(test):,}"
        for name in scan.SPLITS
        for train, test in [scan.split(name)]
    )
    click.echo(f"wrote SCAN's splits (train/test pairs: {sizes}) to {path}")


COMMANDS = (data,)
