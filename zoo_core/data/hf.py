"""Data sets through Hugging Face ``datasets``: ``hf:ORG/NAME[:CONFIG][@REVISION]`` from the Hub
(or the mirror ``HF_ENDPOINT`` names), and local Parquet files, Arrow files and folders written by
``Dataset.save_to_disk``.

A Hub data set is pinned to a commit before it is read (``huggingface_hub`` resolves the
revision; offline, the commit the cache holds for it), so a run records exactly what it read and
a resumed run reads it again. ``datasets`` does the downloading, caching and offline mode; only
Parquet/Arrow data is read (``datasets`` runs no loading scripts), columns are found from the
features and every value is type-checked as it is read. Nothing here is imported by ``zoo list``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core._redact import redact
from zoo_core.data.fingerprint import fingerprint
from zoo_core.errors import ZooError, printable

PREFIX = "hf:"
TABLE_SUFFIXES = (".parquet", ".arrow")
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_SPEC = re.compile(
    rf"hf:(?P<repo>{_NAME}(?:/{_NAME})?)(?::(?P<config>{_NAME}))?(?:@(?P<rev>[A-Za-z0-9._/-]{{1,200}}))?"
)
_COMMIT = re.compile(r"[0-9a-f]{40}")
ROWS_PER_BATCH = 1024


@dataclass(frozen=True)
class HubData:
    """A data set of the Hub: ``repo``, its ``config`` (None: the default) and ``revision``."""

    repo: str
    config: str | None = None
    revision: str | None = None

    def __str__(self) -> str:
        config = f":{self.config}" if self.config else ""
        revision = f"@{self.revision}" if self.revision else ""
        return f"{PREFIX}{self.repo}{config}{revision}"


def is_hub(data: Any) -> bool:
    return isinstance(data, str) and data.startswith(PREFIX)


def is_table(data: Any) -> bool:
    """Whether ``data`` is read through ``datasets``: a Hub data set, a Parquet or Arrow file or a
    folder written by ``save_to_disk``."""
    if is_hub(data):
        return True
    if data is None:
        return False
    path = Path(data)
    if path.is_file():
        return path.suffix.lower() in TABLE_SUFFIXES
    return (path.is_dir() and (path / "dataset_info.json").is_file()) or _is_dict_folder(path)


def _is_dict_folder(path: Path) -> bool:
    return path.is_dir() and (path / "dataset_dict.json").is_file()


def parse(data: str) -> HubData:
    """``hf:ORG/NAME[:CONFIG][@REVISION]``, or one line on how to write it."""
    match = _SPEC.fullmatch(data)
    if not match or ".." in (match["rev"] or ""):
        raise ZooError(
            f"'{printable(data)}' is not a data set of the Hub; write hf:ORG/NAME, "
            "hf:ORG/NAME:CONFIG or hf:ORG/NAME@REVISION"
        )
    return HubData(match["repo"], match["config"], match["rev"])


def offline() -> bool:
    return any(
        os.environ.get(var, "").upper() in ("1", "ON", "YES", "TRUE")
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def pin(data: str) -> str:
    """``data`` with its revision resolved to a commit: from the Hub, or offline (or when the
    Hub cannot be reached) from the Hugging Face cache."""
    spec = parse(data)
    if spec.revision and _COMMIT.fullmatch(spec.revision):
        return str(spec)
    revision = spec.revision or "main"
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    reason = "offline mode is on (HF_HUB_OFFLINE=1)"
    if not offline():
        try:
            sha = HfApi().dataset_info(spec.repo, revision=revision).sha
            if sha and _COMMIT.fullmatch(sha):
                return str(HubData(spec.repo, spec.config, sha))
            reason = "the Hub gave no commit for it"
        except RevisionNotFoundError:
            raise ZooError(f"data set '{spec.repo}' has no revision '{revision}'") from None
        except GatedRepoError:
            raise ZooError(
                f"data set '{spec.repo}' is gated; accept its terms on the Hub and log in "
                "(hf auth login) to read it"
            ) from None
        except RepositoryNotFoundError:
            raise ZooError(
                f"there is no data set '{spec.repo}' on the Hub ({_endpoint()}), or it is "
                "private; check the name, or log in (hf auth login)"
            ) from None
        except OfflineModeIsEnabled:
            pass
        except OSError as exc:  # cannot connect, a time-out, a server error
            reason = f"the Hub at {_endpoint()} cannot be reached ({type(exc).__name__})"
    sha = _cached_commit(spec.repo, revision)
    if sha is None:
        raise ZooError(
            f"data set '{spec}' is not in the Hugging Face cache and {reason}; fetch it once "
            "with a network connection (the same command, online), and it loads offline after"
        )
    return str(HubData(spec.repo, spec.config, sha))


def _endpoint() -> str:
    from huggingface_hub import constants

    return redact(constants.ENDPOINT)


def _cached_commit(repo: str, revision: str) -> str | None:
    """The commit the Hugging Face cache records for ``revision`` of data set ``repo``."""
    from huggingface_hub import constants

    ref = Path(constants.HF_HUB_CACHE) / f"datasets--{repo.replace('/', '--')}" / "refs" / revision
    try:
        sha = ref.read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    return sha if _COMMIT.fullmatch(sha) else None


def load_split(data: str, split: str, streaming: bool = False) -> Any:
    """Split ``split`` of a pinned Hub data set or of a local table, as a ``datasets`` data set
    (an ``IterableDataset`` when ``streaming``). Raises ``KeyError`` for a split it lacks."""
    datasets = _datasets()

    if not _tty():
        datasets.disable_progress_bars()
    try:
        if is_hub(data):
            spec = parse(data)
            return datasets.load_dataset(
                spec.repo, spec.config, split=split, revision=spec.revision, streaming=streaming
            )
        path = Path(data)
        if path.is_file():
            if split != "train":
                raise KeyError(split)
            if path.suffix.lower() == ".arrow":  # memory-mapped where it is, no copy
                table = datasets.Dataset.from_file(str(path))
                return table.to_iterable_dataset() if streaming else table
            return datasets.load_dataset(
                "parquet", data_files={"train": str(path)}, split="train", streaming=streaming
            )
        saved = datasets.load_from_disk(str(path))
        if isinstance(saved, datasets.DatasetDict):
            if split not in saved:
                raise KeyError(split)
            saved = saved[split]
        elif split != "train":
            raise KeyError(split)
        return saved.to_iterable_dataset() if streaming else saved
    except ValueError as exc:
        # "Unknown split ..." (downloaded), "Bad split: ..." (streamed)
        if "split" in str(exc).lower():
            raise KeyError(split) from None
        raise ZooError(f"cannot read data set '{printable(data)}': {printable(exc)}") from None
    except datasets.exceptions.DatasetNotFoundError as exc:
        raise ZooError(_not_found(data, exc)) from None
    except ConnectionError as exc:
        raise ZooError(_not_found(data, exc)) from None
    except FileNotFoundError as exc:
        raise ZooError(f"cannot read data set '{printable(data)}': {printable(exc)}") from None


def _not_found(data: str, exc: BaseException) -> str:
    if offline():
        return (
            f"data set '{printable(data)}' is not in the Hugging Face cache and offline mode is "
            "on (HF_HUB_OFFLINE=1); fetch it once with a network connection (the same command, "
            "online), and it loads offline after"
        )
    return f"cannot load data set '{printable(data)}': {printable(exc)}"


def _tty() -> bool:
    import sys

    return sys.stderr.isatty()


def splits(data: str) -> list[str]:
    """The split names a data set has (for messages)."""
    datasets = _datasets()

    try:
        if is_hub(data):
            spec = parse(data)
            return list(
                datasets.get_dataset_split_names(spec.repo, spec.config, revision=spec.revision)
            )
    except Exception:  # only for a message: the split names are a courtesy
        return []
    path = Path(data)
    if _is_dict_folder(path):
        return list(datasets.load_from_disk(str(path)).keys())
    return ["train"]


def open_split(data: str, split: str, streaming: bool = False, option: str = "split") -> Any:
    """Like ``load_split``, with one line naming the splits there are when ``split`` is not
    (chosen with ``--set OPTION=NAME``)."""
    try:
        return load_split(data, split, streaming)
    except KeyError:
        there = splits(data)
        have = f"it has {', '.join(there)}" if there else "see its page for the splits it has"
        raise ZooError(
            f"data set '{printable(data)}' has no split '{printable(split)}'; {have} "
            f"(--set {option}=NAME)"
        ) from None


def validation_split(data: str, streaming: bool = False) -> tuple[str, Any] | None:
    """The data set's ``validation`` split, else its ``test`` split, else None."""
    for name in ("validation", "test"):
        try:
            return name, load_split(data, name, streaming)
        except KeyError:
            continue
    return None


def key_of(data: str, split: str, column: str) -> dict[str, Any]:
    """What a split's column is, for a cache key: a pinned Hub revision, or a local fingerprint."""
    if is_hub(data):
        spec = parse(data)
        return {
            "hub": spec.repo,
            "config": spec.config,
            "revision": spec.revision,
            "split": split,
            "column": column,
        }
    return {
        "fingerprint": fingerprint(data),
        "path": str(Path(data).resolve()),
        "split": split,
        "column": column,
    }


# -- columns -------------------------------------------------------------------------------------
def _datasets() -> Any:
    """The ``datasets`` library, or one line on how to install it."""
    try:
        import datasets
    except ImportError:
        raise ZooError(
            "reading a data set (hf:ORG/NAME, Parquet, Arrow) needs the 'datasets' package; "
            "install it with: pip install 'zoo-core[hf]'"
        ) from None
    return datasets


def _kind(feature: Any) -> str:
    datasets = _datasets()

    if isinstance(feature, datasets.ClassLabel):
        return "label"
    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, datasets.Value):
        if feature.dtype in ("string", "large_string"):
            return "text"
        if feature.dtype.startswith(("int", "uint")):
            return "integer"
    return "other"


def _describe(features: Any) -> str:
    return ", ".join(f"{name} ({_type_name(f)})" for name, f in features.items())


def _type_name(feature: Any) -> str:
    kind = _kind(feature)
    if kind == "label":
        return "ClassLabel"
    if kind == "image":
        return "Image"
    if isinstance(feature, _datasets().Translation):
        return f"Translation {'/'.join(map(str, feature.languages))}"
    if isinstance(feature, dict):
        return f"struct {'/'.join(map(str, feature))}"
    if hasattr(feature, "dtype"):
        return str(feature.dtype)
    return type(feature).__name__


def find_column(
    dataset: Any, kind: str, chosen: str | None, option: str, where: str, exclude: str = ""
) -> str:
    """The column of ``kind`` ("text", "label", "image"): ``chosen`` (checked), else the one
    column of that kind (other than ``exclude``), or one line listing the columns and types."""
    features = dataset.features
    if features is None:
        raise ZooError(f"data set '{printable(where)}' declares no features; cannot find columns")
    wanted = {"label": ("label", "integer", "text")}.get(kind, (kind,))
    if chosen is not None:
        if chosen not in features:
            raise ZooError(
                f"data set '{printable(where)}' has no column '{printable(chosen)}'; its columns: "
                f"{printable(_describe(features), 500)}"
            )
        if _kind(features[chosen]) not in wanted:
            raise ZooError(
                f"column '{printable(chosen)}' of '{printable(where)}' is "
                f"{_type_name(features[chosen])}, not a {kind} column; its columns: "
                f"{printable(_describe(features), 500)}"
            )
        return chosen
    found = [name for name, f in features.items() if _kind(f) == kind and name != exclude]
    if kind == "label" and not found:  # no ClassLabel: a column named label(s) of ints/strings
        found = [n for n in ("label", "labels") if n in features and _kind(features[n]) in wanted]
    if len(found) == 1:
        return found[0]
    what = "none" if not found else f"{len(found)} ({', '.join(found)})"
    raise ZooError(
        f"data set '{printable(where)}' has {printable(what)} {kind} columns; choose one with "
        f"--set {option}=NAME. Its columns: {printable(_describe(features), 500)}"
    )


def class_names(dataset: Any, column: str) -> list[str] | None:
    """A ClassLabel column's class names (None for a plain column)."""
    datasets = _datasets()

    feature = dataset.features[column]
    if isinstance(feature, datasets.ClassLabel):
        names = [str(n) for n in feature.names]
        if not names or len(names) > 100_000:
            raise ZooError(
                f"column '{column}' has {len(names)} classes; a classifier needs 2 to 100,000"
            )
        return names
    return None


def texts(dataset: Any, column: str, sep: str = "\n\n") -> Iterator[str]:
    """The column's strings, rows joined by ``sep``, a batch of rows at a time."""
    first = True
    for batch in dataset.select_columns([column]).iter(batch_size=ROWS_PER_BATCH):
        values = batch[column]
        bad = next((v for v in values if v is not None and not isinstance(v, str)), None)
        if bad is not None:
            raise ZooError(f"column '{column}' holds {type(bad).__name__} values, not text")
        values = [v for v in values if v]
        if not values:
            continue
        yield ("" if first else sep) + sep.join(values)
        first = False


def labels(dataset: Any, column: str, names: list[str] | None, where: str) -> list[str]:
    """A label column's values as class names: a ClassLabel's names, or the strings or whole
    numbers a plain column holds."""
    out = []
    for value in dataset[column]:
        if names is not None:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(names):
                raise ZooError(
                    f"column '{column}' of '{printable(where)}' holds {printable(repr(value), 40)}, "
                    f"not a class index below {len(names)}"
                )
            out.append(names[value])
        elif isinstance(value, str) and value.strip():
            out.append(value.strip())
        elif isinstance(value, int) and not isinstance(value, bool):
            out.append(str(value))
        else:
            raise ZooError(
                f"column '{column}' of '{printable(where)}' holds {printable(repr(value), 40)}, "
                "not a label (a class name or a whole number)"
            )
    return out


@dataclass(frozen=True)
class PairColumns:
    """Where a data set keeps source and target texts: two text columns, or the languages
    ``source_lang`` and ``target_lang`` of one translation column (``source``)."""

    source: str
    target: str | None = None
    source_lang: str | None = None
    target_lang: str | None = None


def translation_languages(feature: Any) -> list[str] | None:
    """The languages of a translation column: a ``Translation`` feature's, or the keys of a
    struct of strings ({"de": ..., "en": ...}); None for any other column."""
    if isinstance(feature, _datasets().Translation):
        return [str(language) for language in feature.languages]
    if isinstance(feature, dict) and feature and all(_kind(f) == "text" for f in feature.values()):
        return [str(language) for language in feature]
    return None


def find_pair_columns(
    dataset: Any,
    where: str,
    source_column: str | None = None,
    target_column: str | None = None,
    source_lang: str | None = None,
    target_lang: str | None = None,
) -> PairColumns:
    """The source and target of a sequence-to-sequence data set: the columns chosen, else the
    text columns ``source`` and ``target``, else a translation column (``translation``, or the
    one there is) and the languages chosen; one line listing the columns and types otherwise."""
    features = dataset.features
    if features is None:
        raise ZooError(f"data set '{printable(where)}' declares no features; cannot find columns")
    listing = f"Its columns: {printable(_describe(features), 500)}"
    by_lang = source_lang is not None or target_lang is not None
    if source_column is not None or target_column is not None:
        if by_lang:
            raise ZooError(
                "choose the source and target by column (source_column, target_column) or by "
                "language of a translation column (source_lang, target_lang), not both"
            )
        source = find_column(dataset, "text", source_column or "source", "source_column", where)
        target = find_column(dataset, "text", target_column or "target", "target_column", where)
        if source == target:
            raise ZooError(f"the source and the target are both column '{printable(source)}'")
        return PairColumns(source, target)
    if not by_lang and "source" in features and "target" in features:
        return PairColumns(
            find_column(dataset, "text", "source", "source_column", where),
            find_column(dataset, "text", "target", "target_column", where),
        )
    named = "translation" in features and translation_languages(features["translation"])
    found = (
        ["translation"]
        if named
        else [name for name, f in features.items() if translation_languages(f) is not None]
    )
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(found)})"
        raise ZooError(
            f"data set '{printable(where)}' has no text columns 'source' and 'target' and "
            f"{printable(what)} translation columns; choose the columns with --set "
            f"source_column=NAME --set target_column=NAME. {listing}"
        )
    column = found[0]
    languages = translation_languages(features[column]) or []
    shown = printable(", ".join(languages), 300)
    if not by_lang:
        pick = " ".join(
            f"--set {k}={printable(v, 40)}"
            for k, v in zip(("source_lang", "target_lang"), languages, strict=False)
        )
        raise ZooError(
            f"the translation column '{printable(column)}' of '{printable(where)}' has the "
            f"languages {shown}; choose the source and the target, e.g. {pick}"
        )
    if len(languages) == 2:  # one language named: the target is the other one, or the source
        source_lang = source_lang or next(x for x in languages if x != target_lang)
        target_lang = target_lang or next(x for x in languages if x != source_lang)
    for option, language in (("source_lang", source_lang), ("target_lang", target_lang)):
        if language is None:
            raise ZooError(
                f"the translation column '{printable(column)}' of '{printable(where)}' has the "
                f"languages {shown}; set {option} too"
            )
        if language not in languages:
            raise ZooError(
                f"the translation column '{printable(column)}' of '{printable(where)}' has no "
                f"language '{printable(language, 40)}' ({option}); its languages: {shown}"
            )
    if source_lang == target_lang:
        raise ZooError(f"the source and the target are both language '{printable(source_lang)}'")
    return PairColumns(column, None, source_lang, target_lang)


def pairs(dataset: Any, columns: PairColumns, where: str) -> list[tuple[str, str]]:
    """The (source, target) texts of a data set's rows, stripped; a row with an empty or
    missing side is left out, and a value that is not text is one line naming its row."""
    names = [columns.source] if columns.target is None else [columns.source, columns.target]
    out = []
    for n, row in enumerate(rows(dataset, names)):
        if columns.target is None:
            value = row[columns.source]
            if value is not None and not isinstance(value, dict):
                raise ZooError(
                    f"row {n} of '{printable(where)}': column '{printable(columns.source)}' "
                    f"holds {type(value).__name__}, not a translation"
                )
            value = value or {}
            sides = {
                f"{columns.source}.{columns.source_lang}": value.get(columns.source_lang),
                f"{columns.source}.{columns.target_lang}": value.get(columns.target_lang),
            }
        else:
            sides = {name: row[name] for name in names}
        for name, text in sides.items():
            if text is not None and not isinstance(text, str):
                raise ZooError(
                    f"row {n} of '{printable(where)}': '{printable(name)}' holds "
                    f"{type(text).__name__}, not text"
                )
        source, target = ((text or "").strip() for text in sides.values())
        if source and target:
            out.append((source, target))
    if not out:
        raise ZooError(
            f"data set '{printable(where)}' holds no rows with both a source and a target text"
        )
    return out


class Column:
    """A column's values read on demand, a batch of rows at a time, so the data set is never all
    in memory. An ``Image`` column gives each image's encoded bytes (a file object), decoded by
    the reader: an image stored as a path only is refused, as a path a data set names is never
    read."""

    def __init__(self, dataset: Any, column: str, where: str = ""):
        self.dataset, self.column, self.where = dataset, column, where
        datasets = _datasets()
        self.image = isinstance(dataset.features[column], datasets.Image)
        if self.image:  # bytes, never decoded (nor a path opened) by datasets
            self.dataset = dataset.select_columns([column]).cast_column(
                column, datasets.Image(decode=False)
            )

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[Any]:
        n = 0
        for batch in self.dataset.select_columns([self.column]).iter(batch_size=ROWS_PER_BATCH):
            for value in batch[self.column]:
                yield self._value(value, n) if self.image else value
                n += 1

    def encoded(self, indices: list[int]) -> list[bytes]:
        """The encoded images of rows ``indices`` (an ``Image`` column)."""
        values = self.dataset[list(map(int, indices))][self.column]
        return [self._value(v, i).getvalue() for v, i in zip(values, indices, strict=True)]

    def name(self, index: int) -> str:
        return f"row {index} of {self.where}"

    def _value(self, value: Any, index: int) -> io.BytesIO:
        data = value.get("bytes") if isinstance(value, dict) else None
        if not isinstance(data, bytes):
            raise ZooError(
                f"image in {self.name(index)} is not stored in the data set (a path only); "
                "store the images' bytes in it (datasets' Image feature does by default)"
            )
        return _Encoded(data, self.name(index))


class _Encoded(io.BytesIO):
    """An image file's bytes, named by where they came from (for error messages)."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name

    def __str__(self) -> str:
        return self.name


def rows(dataset: Any, columns: list[str]) -> Iterator[dict[str, Any]]:
    """The rows of ``columns``, one dict at a time (images decoded by ``datasets``)."""
    for batch in dataset.select_columns(columns).iter(batch_size=ROWS_PER_BATCH):
        for values in zip(*(batch[c] for c in columns), strict=True):
            yield dict(zip(columns, values, strict=True))
