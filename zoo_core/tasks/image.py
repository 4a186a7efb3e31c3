"""Image classification: an image folder (one sub-folder per class) or the embedded shapes.

A model for this task maps images ``(B, in_channels, image_size, image_size)`` to class logits
``(B, num_classes)``. The task reads ``image_size`` and ``in_channels`` from the model's config
and resizes (and centre-crops) every image to that size. Per-channel normalisation statistics
come from the training images and are saved with the class names in the task's state, so a loaded
model predicts on new files with the same preprocessing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import plot, protocols
from zoo_core.data import hf, shapes
from zoo_core.data import images as image_data
from zoo_core.errors import ZooError
from zoo_core.tasks.base import Task, trained_on

CONFUSION_FILE = "confusion.png"
_MAX_GENERATED_SIZE = 64  # larger models get the shapes upsampled per batch, not stored large
# Far beyond what the zoo trains, and what a saved run may ask of Pillow and numpy: an image of
# 4096 x 4096 RGB pixels is 48 MiB, and a data set of 200,000 generated shapes about 2 GiB.
MAX_IMAGE_SIZE = 4096
MAX_NUM_IMAGES = 200_000
# Decoded images beyond this many bytes are decoded as they are read, not all held in memory.
LAZY_BYTES = 1 << 30
STATS_IMAGES = 2_000  # training images the normalisation statistics of lazy data come from


def check_count(name: str, value: Any, limit: int) -> None:
    """A ValueError naming ``name`` unless ``value`` is a whole number from 1 to ``limit``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ValueError(f"{name} must be a whole number from 1 to {limit:,}, not {value!r}")


@dataclass
class ImageOptions:
    val_fraction: float = 0.1  # held out (seeded) for validation when no --val-data is given
    num_images: int = shapes.DEFAULT_NUM  # size of the generated default data set
    pad: int = 4  # training augmentation: random crop after padding by this many pixels (0: off)
    flip: bool = True  # training augmentation: random horizontal flips
    bad_images: Literal["skip", "error"] = "skip"  # an unreadable file: warn and skip, or stop
    split: str = "train"  # of a data set read through `datasets` (hf:ORG/NAME, Parquet, Arrow)
    image_column: str | None = None  # its images; default: its Image column
    label_column: str | None = None  # its labels; default: its ClassLabel column
    # Processes decoding images as training reads them (0: decode all of them into memory
    # first). Default: 0, or up to 4 when the decoded images would take more than 1 GiB.
    workers: int | None = None

    def __post_init__(self):
        check_count("num_images", self.num_images, MAX_NUM_IMAGES)


def prefetch_next(images: Any, batch_size: int, generator: torch.Generator) -> None:
    """Start decoding the rows of lazily decoded ``images`` that the next batch of
    ``batch_size`` will draw, when the next draw from ``generator`` picks them (nothing for
    images in memory). They are drawn from a copy: the generator itself is not touched, so a
    resumed run (which restores it and starts with nothing prefetched) reads what an
    uninterrupted one does."""
    if isinstance(images, image_data.LazyImages):
        ahead = torch.Generator().set_state(generator.get_state())
        images.prefetch(torch.randint(len(images), (batch_size,), generator=ahead))


def spread(images: Any, labels: torch.Tensor, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``limit`` of ``images`` (and their labels) in memory: all of them when there are
    no more, else an evenly spread subset (of images sorted by class: every class is in it)."""
    if len(labels) <= limit:
        return images[:], labels
    pick = torch.linspace(0, len(labels) - 1, limit).long()
    return images[pick], labels[pick]


def data_state(task: Task) -> dict[str, Any]:
    """What an image task learned of its data, as JSON: where it came from, classes, size."""
    return {
        "data": task.data_name,
        "source": task.source,
        "val_source": task.val_source,
        "seed": task.seed,
        "classes": task.classes,
        "image_size": task.image_size,
        "channels": task.channels,
    }


def load_data_state(task: Task, state: dict[str, Any]) -> None:
    """Restore what ``data_state`` saved onto ``task``; one line when it is not what
    ``data_state`` writes (a saved state is data from whoever made the run)."""
    task.data_name = state.get("data", "")
    task.source = state.get("source")  # the training folder; None for the default data
    task.val_source = state.get("val_source")
    task.seed = state.get("seed", 0)
    classes = state.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ZooError("the saved task state's classes are not a list of names")
    task.classes = list(classes)
    task.image_size = state.get("image_size")
    task.channels = state.get("channels", 3)
    try:
        if task.image_size is not None:
            check_count("image_size", task.image_size, MAX_IMAGE_SIZE)
        if task.channels not in (1, 3) or isinstance(task.channels, bool):
            raise ValueError(f"channels must be 1 or 3, not {task.channels!r}")
    except ValueError as exc:
        raise ZooError(f"the saved task state's {exc}") from None


def bind_image_size(task: Task, size: Any, channels: Any) -> None:
    """Take the model's image size and channels, refusing those the saved state contradicts or
    no image should have."""
    try:
        check_count("the model's image_size", size, MAX_IMAGE_SIZE)
    except ValueError as exc:
        raise ZooError(str(exc)) from None
    if task.image_size is not None:  # a saved task: it read its images at these sizes
        for name, saved, model in (
            ("image_size", task.image_size, size),
            ("channels", task.channels, channels),
        ):
            if saved != model:
                raise ZooError(
                    f"the saved task reads images of {name} {saved} and the model's is {model}; "
                    "the run's config.json contradicts itself"
                )
    task.image_size = size
    task.channels = channels


class ImageClassification(Task):
    pictures: ClassVar[dict[str, str]] = {
        CONFUSION_FILE: "The confusion matrix of the last evaluation (rows: true class)"
    }
    name = "image-classification"
    pipeline_tag = "image-classification"
    try_command = "zoo predict {source} picture.png"
    model_protocol = protocols.ImageClassifier
    Options = ImageOptions
    metric = "val_accuracy"
    lower_is_better = False
    min_classes = 2  # class folders a data set needs (image generation reads one as well)

    def load_state(self, state: dict[str, Any]) -> None:
        load_data_state(self, state)
        self.mean = state.get("mean")
        self.std = state.get("std")
        # Imported weights' preprocessing: the shorter side resized to `resize` pixels, then
        # the centre cropped (absent: the image's centre square, resized bilinearly).
        self.resize = state.get("resize")
        self.resample = state.get("resample", "bilinear")
        try:
            if self.resize is not None:
                check_count("resize", self.resize, MAX_IMAGE_SIZE)
            if self.resample not in image_data.RESAMPLING:
                raise ValueError(
                    f"resample must be one of {', '.join(image_data.RESAMPLING)}, not "
                    f"{self.resample!r}"
                )
            for name in ("mean", "std"):
                value = getattr(self, name)
                if value is not None and (
                    not isinstance(value, list)
                    or not all(
                        isinstance(v, int | float) and not isinstance(v, bool) for v in value
                    )
                ):
                    raise ValueError(f"{name} must be a list of numbers")
        except ValueError as exc:
            raise ZooError(f"the saved task state's {exc}") from None
        # Statistics kept from the weights a run started from (--init), not fit to its data.
        self._adopted = (self.mean, self.std) if state.get("adopted") and self.mean else None
        self.confusion: list[list[int]] | None = None

    def state(self) -> dict[str, Any]:
        extra = {"resize": self.resize, "resample": self.resample} if self.resize else {}
        if getattr(self, "_adopted", None):  # kept from the weights it started from
            extra["adopted"] = True
        return {
            **data_state(self),
            "mean": self.mean,
            "std": self.std,
            **extra,
        }

    def adopt(self, other: Task) -> None:
        """Read images as the weights' own task did (resize, resample), normalised by its
        statistics rather than the new data's."""
        self.resize, self.resample = getattr(other, "resize", None), other.resample
        self._adopted = (list(other.mean), list(other.std)) if other.mean else None

    @property
    def _resizing(self) -> tuple[int | None, str]:
        return self.resize, self.resample

    def _read(self, path: Any) -> np.ndarray:
        """One image as this task's model reads it, before normalisation."""
        return image_data.read_image(
            path, self.image_size, self.channels, self.resize, self.resample
        )

    # -- data ----------------------------------------------------------------------------------
    def setup(self, data: str | None, val_data: str | None = None, seed: int = 0) -> None:
        """Find the classes and files; images are read in ``bind``, at the model's input size."""
        if not 0 < self.options.val_fraction < 1 and val_data is None:
            raise ZooError(f"val_fraction must be between 0 and 1, not {self.options.val_fraction}")
        self.source, self.val_source, self.seed = data, val_data, seed
        if data is None:
            self.data_name = shapes.DEFAULT_DATA_NAME
            self.classes = list(shapes.CLASSES)
            self._files = None
        else:
            if hf.is_hub(data):
                self.source = data = hf.pin(data)
            self.data_name = str(data)
            self.classes, files, labels = self._scan(data)
            self._files = (files, labels)
        self._val_files = None
        if val_data is not None:
            val_classes, files, labels = self._scan(val_data)
            self._val_files = (files, self._relabel(val_classes, labels, val_data))
        elif data is not None and hf.is_table(data):  # the data set's own validation split
            self._val_files = self._table_split(data)
        if len(self.classes) < self.min_classes:
            raise ZooError(
                f"'{data}' has one class folder only ({self.classes[0]}); classification needs two or more"
            )

    def _scan(self, data: str, split: str | None = None) -> tuple[list[str], Any, list[int]]:
        """Class names, images (files, or a data set's image column) and class indices."""
        if not hf.is_table(data):
            return image_data.scan_folder(data, flat=self.min_classes < 2)
        o = self.options
        dataset = hf.open_split(data, split or o.split)
        image = hf.find_column(dataset, "image", o.image_column, "image_column", data)
        try:
            label = hf.find_column(dataset, "label", o.label_column, "label_column", data)
        except ZooError:
            if self.min_classes > 1 or o.label_column is not None:
                raise
            return ["images"], hf.Column(dataset, image, data), [0] * len(dataset)  # one class
        names = hf.class_names(dataset, label)
        found = hf.labels(dataset, label, names, data)
        classes = names or sorted(set(found))
        index = {c: i for i, c in enumerate(classes)}
        return classes, hf.Column(dataset, image, data), [index[c] for c in found]

    def _table_split(self, data: str) -> tuple[Any, list[int]] | None:
        """A data set's ``validation`` (or ``test``) split as (images, class indices)."""
        found = hf.validation_split(data)
        if found is None:
            return None
        classes, images, labels = self._scan(data, found[0])
        return images, self._relabel(classes, labels, f"{data} ({found[0]})")

    def _relabel(self, found: list[str], labels: list[int], where: str) -> list[int]:
        unknown = sorted(set(found) - set(self.classes))
        if unknown:
            raise ZooError(
                f"'{where}' has classes the model was not trained on: {', '.join(unknown)}; "
                f"its classes are: {', '.join(self.classes)}"
            )
        return [self.classes.index(found[i]) for i in labels]

    def model_config(self) -> dict[str, Any]:
        return {"num_classes": len(self.classes)}

    def bind(self, model_config: Any) -> None:
        """Read the images at the model's input size; fit the normalisation statistics."""
        bind_image_size(self, model_config.image_size, protocols.in_channels(model_config))
        if self.channels not in (1, 3):
            raise ZooError(
                f"images are read as grey (in_channels=1) or RGB (3), not {self.channels}"
            )
        if getattr(model_config, "num_classes", len(self.classes)) != len(self.classes):
            raise ZooError(
                f"the data has {len(self.classes)} classes but the model's num_classes is "
                f"{model_config.num_classes}; leave num_classes unset to take it from the data"
            )
        if not hasattr(self, "_files"):
            return  # a loaded task: inference only
        count = sum(len(found[1]) for found in (self._files, self._val_files) if found)
        workers = self._workers(count)  # 0 for the generated default data
        if workers > 0:  # decoded as they are read, in worker processes
            train, (self.val_x, self.val_y) = self._lazy_splits(
                self._files, self._val_files, workers
            )
            self.train_x, self.train_y = train
            sample = self._stats_sample()
        else:
            train, val = self._read_splits(self.source, self._files, self._val_files)
            self.train_x, self.train_y = train
            self.val_x, self.val_y = val
            sample = self.train_x
        pixels = sample.float().div_(255).transpose(0, 1).reshape(self.channels, -1)
        self.mean = pixels.mean(dim=1).tolist()
        self.std = pixels.std(dim=1).clamp_min(1e-3).tolist()
        if getattr(self, "_adopted", None):  # the statistics the weights were trained with
            self.mean, self.std = self._adopted

    def _read_splits(self, source, files, val_files):
        """((train images, labels), (val images, labels)) as tensors; val sorted by class."""
        if source is None:
            size = min(self.image_size, _MAX_GENERATED_SIZE)
            x, y = shapes.generate(self.options.num_images, seed=0, size=size)
            if self.channels == 1:
                x = _grey(x)
        else:
            x, y = image_data.read_images(
                *files, self.image_size, self.channels, self.options.bad_images, *self._resizing
            )
        self._check_classes(y, source)
        if val_files is not None:
            val = image_data.read_images(
                *val_files, self.image_size, self.channels, self.options.bad_images, *self._resizing
            )
            if len(val[1]) == 0:
                raise ZooError(f"the validation folder '{self.val_source}' has no readable images")
            train = (x, y)
        else:
            if len(y) < 2:
                raise ZooError(
                    f"'{source}' has {len(y)} readable image(s); a split needs at least two"
                )
            order = np.random.default_rng(self.seed).permutation(len(y))
            n_val = min(len(y) - 1, max(1, round(len(y) * self.options.val_fraction)))
            train = (x[order[n_val:]], y[order[n_val:]])
            val = (x[order[:n_val]], y[order[:n_val]])
            counts = np.bincount(train[1], minlength=len(self.classes))
            unseen = [self.classes[i] for i in np.nonzero(counts == 0)[0]]
            if unseen:
                where, advice = (
                    (f"'{source}'", "add images, or give --val-data")
                    if source is not None
                    else (
                        f"the embedded {self.data_name} data (num_images={len(y)})",
                        "--set a larger num_images",
                    )
                )
                raise ZooError(
                    f"class(es) {', '.join(unseen)} of {where} have too few images: all went to "
                    f"the validation split, none is left to train on; {advice}"
                )
        by_class = np.argsort(val[1], kind="stable")  # an evenly spread subset covers every class
        val = (val[0][by_class], val[1][by_class])
        return tuple((torch.from_numpy(a), torch.from_numpy(b)) for a, b in (train, val))

    def _workers(self, count: int) -> int:
        """How many processes decode ``count`` images as they are read (0: all are read
        first): ``workers`` if set, else up to 4 when they would take over ``LAZY_BYTES``."""
        if self.source is None or self.options.workers == 0:
            return 0
        if self.options.workers is not None:
            if self.options.workers < 0:
                raise ZooError(f"workers must be 0 or more, not {self.options.workers}")
            return self.options.workers
        decoded = count * self.channels * self.image_size**2
        return min(4, os.cpu_count() or 1) if decoded > LAZY_BYTES else 0

    def _lazy(self, files: Any, rows: np.ndarray, workers: int) -> image_data.LazyImages:
        """Images ``files[rows]``, decoded when read."""
        if isinstance(files, hf.Column):
            items, name = files.encoded, files.name
        else:
            items, name = (lambda part: [str(files[i]) for i in part]), (lambda i: str(files[i]))
        return image_data.LazyImages(
            lambda part: items([int(rows[i]) for i in part]),
            len(rows),
            self.image_size,
            self.channels,
            workers,
            self.options.bad_images,
            lambda i: name(int(rows[i])),
            *self._resizing,
        )

    def _lazy_splits(self, found: Any, given_val: Any, workers: int) -> tuple:
        """The splits ``_read_splits`` makes of ``found`` (files, labels) and ``given_val``
        (or None), as images decoded when read: the same held-out draw (of all the files, none
        dropped as unreadable beforehand: an unreadable one is reported when it is read),
        validation sorted by class. ((train images, labels), (val images, labels))."""
        files, labels = found
        labels = np.asarray(labels, dtype=np.int64)
        self._check_classes(labels, self.source)
        if given_val is not None:
            val_files, val_labels = given_val
            val_labels = np.asarray(val_labels, dtype=np.int64)
            train_rows, val_rows = np.arange(len(labels)), np.arange(len(val_labels))
        else:
            val_files, val_labels = files, labels
            order = np.random.default_rng(self.seed).permutation(len(labels))
            n_val = min(len(labels) - 1, max(1, round(len(labels) * self.options.val_fraction)))
            train_rows, val_rows = order[n_val:], order[:n_val]
        val_rows = val_rows[np.argsort(val_labels[val_rows], kind="stable")]
        train = self._lazy(files, train_rows, workers), torch.from_numpy(labels[train_rows])
        val = self._lazy(val_files, val_rows, workers), torch.from_numpy(val_labels[val_rows])
        return train, val

    def _stats_sample(self) -> torch.Tensor:
        """A seeded sample of the training images for the normalisation statistics."""
        n = len(self.train_y)
        pick = np.sort(np.random.default_rng(self.seed).permutation(n)[:STATS_IMAGES])
        return self.train_x[torch.from_numpy(pick)]

    def _check_classes(self, labels: np.ndarray, source: str | None) -> None:
        counts = np.bincount(labels, minlength=len(self.classes))
        empty = [self.classes[i] for i in np.nonzero(counts == 0)[0]]
        if empty:
            raise ZooError(
                f"class folder(s) {', '.join(empty)} of '{source}' have no readable images; "
                "add images or remove the folder"
            )

    def setup_eval(self, data: str | None) -> None:
        """The validation images, decoded when read (as training reads them) where they would
        take more than ``LAZY_BYTES`` or ``workers`` says so."""
        if data is None and self.val_source is not None:
            data = trained_on(self.val_source)
        val_files = None
        if data is None and self.source is not None and hf.is_table(self.source):
            val_files = self._table_split(trained_on(self.source))  # its own validation split
        if data is None and val_files is None:  # the held-out part of what it was trained on
            files = None
            if self.source is not None:
                classes, found, labels = self._scan(trained_on(self.source))
                files = (found, self._relabel(classes, labels, self.source))
                workers = self._workers(len(labels))  # as training decided, of all the files
                if workers > 0:
                    _, (self.val_x, self.val_y) = self._lazy_splits(files, None, workers)
                    return
            _, (self.val_x, self.val_y) = self._read_splits(self.source, files, None)
            return
        if val_files is None:
            classes, found, labels = self._scan(data)
            self.val_source = data
            val_files = (found, self._relabel(classes, labels, data))
        workers = self._workers(len(val_files[1]))
        if workers > 0:  # sorted by class, as below; an unreadable image is told when read
            labels = np.asarray(val_files[1], dtype=np.int64)
            rows = np.argsort(labels, kind="stable")
            self.val_x = self._lazy(val_files[0], rows, workers)
            self.val_y = torch.from_numpy(labels[rows])
            return
        x, y = image_data.read_images(
            *val_files,
            self.image_size,
            self.channels,
            self.options.bad_images,
            *self._resizing,
        )
        if len(y) == 0:
            raise ZooError(f"'{data or self.source}' has no readable images")
        order = np.argsort(y, kind="stable")
        self.val_x, self.val_y = torch.from_numpy(x[order]), torch.from_numpy(y[order])

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images ``(B, C, h, w)`` as a model of this task reads them: floats
        ``(B, C, image_size, image_size)``, normalised by the training images' mean and std."""
        x = images.float().div_(255)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(
                x,
                size=(self.image_size, self.image_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple:
        idx = torch.randint(len(self.train_y), (batch_size,), generator=generator)
        x = self.normalise(self.train_x[idx])  # (B, C, S, S)
        B, C, H, W = x.shape
        pad = self.options.pad
        if pad > 0:  # a random S x S window of the zero-padded (mean-coloured) image
            padded = F.pad(x, (pad, pad, pad, pad))  # (B, C, S + 2p, S + 2p)
            dy = torch.randint(2 * pad + 1, (B,), generator=generator)
            dx = torch.randint(2 * pad + 1, (B,), generator=generator)
            rows = (dy[:, None] + torch.arange(H))[:, None, :, None]  # (B, 1, S, 1)
            cols = (dx[:, None] + torch.arange(W))[:, None, None, :]  # (B, 1, 1, S)
            x = padded[
                torch.arange(B)[:, None, None, None],
                torch.arange(C)[None, :, None, None],
                rows,
                cols,
            ]
        if self.options.flip:
            flip = torch.rand(B, generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        # The next batch's images are drawn first from the generator as it is now: start
        # decoding them (when decoded as read) while this batch trains.
        prefetch_next(self.train_x, batch_size, generator)
        return x.contiguous(), self.train_y[idx]

    def describe_data(self) -> str:
        n = len(getattr(self, "train_y", ()))
        return f"{self.data_name} ({n} training images, {len(self.classes)} classes)"

    # -- loss and metrics ----------------------------------------------------------------------
    def loss(self, model: nn.Module, batch: tuple) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y)  # logits (B, K)

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, batch_size: int, limit: int | None = None
    ) -> dict[str, float]:
        """Loss, accuracy, top-5 accuracy (more than five classes) and accuracy per class."""
        x_all, y_all = self.val_x, self.val_y
        if limit is not None and limit * batch_size < len(y_all):
            pick = torch.linspace(0, len(y_all) - 1, limit * batch_size).long()
            x_all, y_all = x_all[pick], y_all[pick]
        K = len(self.classes)
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        loss, top5 = 0.0, 0
        confusion = torch.zeros(K, K, dtype=torch.long)  # (true, predicted)
        for i in range(0, len(y_all), batch_size):
            x = self.normalise(x_all[i : i + batch_size]).to(device)
            y = y_all[i : i + batch_size]
            logits = model(x).float().cpu()  # (B, K)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            confusion += torch.bincount(y * K + logits.argmax(1), minlength=K * K).view(K, K)
            if K > 5:
                top5 += (logits.topk(5, dim=1).indices == y[:, None]).any(1).sum().item()
        model.train(was_training)
        n = len(y_all)
        metrics = {"val_loss": loss / n, "val_accuracy": confusion.trace().item() / n}
        if K > 5:
            metrics["val_top5"] = top5 / n
        support = confusion.sum(1)
        for k, name in enumerate(self.classes):
            if support[k] > 0:
                metrics[f"val_acc_{name}"] = confusion[k, k].item() / support[k].item()
        if limit is None or limit * batch_size >= len(self.val_y):
            self.confusion = confusion.tolist()
        return metrics

    def save_extras(self, run_dir: str | Path) -> None:
        """Write the last full evaluation's confusion matrix as a PNG in the run folder."""
        if self.confusion is None:
            return
        plot.save(plot.draw_confusion(self.confusion, self.classes), Path(run_dir) / CONFUSION_FILE)

    def example_batch(self, model_config: Any, batch_size: int = 2) -> tuple:
        g = torch.Generator().manual_seed(0)
        C, S = protocols.in_channels(model_config), model_config.image_size
        x = torch.randn(batch_size, C, S, S, generator=g)
        return x, torch.randint(model_config.num_classes, (batch_size,), generator=g)

    def outputs(self, model: nn.Module, batch: tuple) -> torch.Tensor:
        return model(batch[0])

    # -- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def predict(
        self,
        model: nn.Module,
        images: list[Any],
        top_k: int = 5,
        batch_size: int = 64,
        on_error: str = "raise",
    ) -> list[dict[str, Any]]:
        """The ``top_k`` likeliest classes of each image (a file, a folder standing for the images
        under it, or a Pillow image), with probabilities, likeliest first.

        An image Pillow cannot read raises a ZooError naming it (``on_error="raise"``), or gets
        ``{"image": ..., "error": ...}`` in its place while the others are classified
        (``on_error="report"``)."""
        if top_k < 1:
            raise ZooError(f"top-k must be at least 1, not {top_k}")
        if on_error not in ("raise", "report"):
            raise ZooError(f"on_error must be 'raise' or 'report', not {on_error!r}")
        images = _image_files(images)
        k = min(top_k, len(self.classes))
        device = next(model.parameters()).device
        model.eval()
        results: list[dict[str, Any]] = []
        for i in range(0, len(images), batch_size):
            readable: list[tuple[dict[str, Any], np.ndarray]] = []  # (its result, its pixels)
            for path in images[i : i + batch_size]:
                result: dict[str, Any] = {"image": _name(path)}
                results.append(result)
                try:
                    pixels = self._read(path)
                except ZooError as exc:
                    if on_error == "raise":
                        raise
                    result["error"] = str(exc)
                    continue
                readable.append((result, pixels))
            if not readable:
                continue
            raw = torch.from_numpy(np.stack([pixels for _, pixels in readable]))
            probs = torch.softmax(model(self.normalise(raw).to(device)).float(), 1)
            top = probs.cpu().topk(k, dim=1)  # sorted, likeliest first
            for (result, _), values, indices in zip(readable, top.values, top.indices, strict=True):
                result["predictions"] = [
                    {"class": self.classes[c], "probability": float(p)}
                    for p, c in zip(values.tolist(), indices.tolist(), strict=True)
                ]
        return results


def _image_files(paths: list[Any]) -> list[Any]:
    """The image files named by ``paths``; a folder stands for the images under it, sorted;
    Pillow images are kept as they are."""
    from PIL import Image

    if not paths:
        raise ZooError("give at least one image to classify")
    files: list[Any] = []
    for path in paths:
        if isinstance(path, Image.Image):
            files.append(path)
            continue
        if not isinstance(path, str | Path):
            raise ZooError(
                f"cannot classify {type(path).__name__!r} objects: give image files, folders of "
                "them, or Pillow images"
            )
        p = Path(path)
        if p.is_dir():
            found = image_data.image_files(p)
            if not found:
                kinds = ", ".join(image_data.IMAGE_EXTENSIONS)
                raise ZooError(f"folder '{path}' holds no images ({kinds}); give image files")
            files.extend(found)
        elif p.is_file():
            files.append(path)
        else:
            raise ZooError(f"image '{path}' does not exist")
    return files


def _name(image: Any) -> str:
    """How a result names its image: the path, or the file a Pillow image was opened from."""
    if isinstance(image, str | Path):
        return str(image)
    return (
        getattr(image, "filename", "") or f"<{type(image).__name__} {image.width}x{image.height}>"
    )


def _grey(images: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(N, 3, H, W)`` to luminance ``(N, 1, H, W)`` (ITU-R 601, as Pillow's "L")."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(1, 3, 1, 1)
    return np.round((images * weights).sum(1, keepdims=True)).astype(np.uint8)
