"""Adversarial generation: images (``image-generation``) and 2-D points (``toy-2d``).

A model for these tasks is an ``nn.Module`` with a ``latent_dim``, a ``generator`` (latents
``(B, latent_dim)`` to samples) and a ``discriminator`` (samples to logits ``(B,)``); with the
``ema`` option it also holds ``generator_ema``, a weight average of the generator that is used for
sampling (the task asks for it through the model config field ``keep_ema``).

An image model may be class-conditional: with ``num_classes`` K > 0 (which the image task sets
from the data's class folders) its generator takes class labels ``(B,)`` after the latents, and
its discriminator returns ``(B, 1 + K)``: the "real" logit, then class logits. Both players then
also learn the classes, as in Odena et al.'s AC-GAN: the discriminator classifies the real images
and the generator is rewarded when its samples are classified as the class it was asked for
(``aux_weight`` weighs these terms). The fakes of a step take the labels of its real images
(with ``diversity_weight``, those of the first half of them twice).

Two image options help a small GAN on a small budget: ``augment`` shows the discriminator real
and fake images through the same random, differentiable augmentations (Zhao et al.'s
DiffAugment), and ``diversity_weight`` adds Mao et al.'s mode-seeking term to the generator's
loss, which pays for pairs of latents drawn to near-identical samples (with a class-conditional
model the two latents of a pair share their class).

A training batch carries its latents, drawn for the whole batch with the real samples: the
processes of a distributed run each take their slice of one global batch, latents included, so
that N processes draw what one does (drawn by each process for its slice, they would be alike).
Under several processes each player is wrapped on its own (``wrap_model``), as the task calls
them itself.

Each training step has two optimizers: the discriminator's loss is yielded first (real samples
against detached fakes), the Trainer steps the discriminator, and only then is the generator's
loss computed, against the updated discriminator. Losses: non-saturating (Goodfellow et al.) or
hinge (Lim & Ye; Miyato et al.).

Metrics that need no download: for the ring of Gaussians, how many modes the samples cover and
the share of samples within 3 standard deviations of a mode; for images, a classifier trained on
the same data for a few seconds at setup (the 8-layer ResNet of zoo-resnet's ``resnet``, a
dependency of this plugin) says which classes the samples look like, and how confidently.

At each evaluation the samples of one fixed latent batch are drawn to ``samples/step-000400.png`` in
the run folder (the task is told the folder through ``run_dir``), so a run can be watched as it
learns; ``samples.png`` holds the last.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn
from zoo_resnet.model import ResNet, ResNetConfig

from zoo_core import ZooError, plot, protocols
from zoo_core.data import shapes
from zoo_core.inference import PictureOptions
from zoo_core.tasks.base import Task, trained_on
from zoo_core.tasks.image import (
    MAX_IMAGE_SIZE,
    MAX_NUM_IMAGES,
    STATS_IMAGES,
    ImageClassification,
    ImageOptions,
    bind_image_size,
    data_state,
    load_data_state,
    prefetch_next,
    spread,
)
from zoo_core.training.config import TrainConfig
from zoo_core.training.optim import adamw
from zoo_core.training.trainer import Trainer, TrainingInterrupted
from zoo_gan import ring
from zoo_gan.augment import diff_augment, parse_augment
from zoo_gan.metrics import class_score, colour_gap, diversity

SAMPLES_DIR = "samples"
SAMPLES_FILE = "samples.png"
_EVAL_SEED = 1234  # the fixed latents of every evaluation and progress grid
_EMA_WARMUP = 10  # the average's decay ramps up as (1 + step) / (10 + step) towards `ema`
# The scoring classifier: zoo-resnet's `resnet`, the 8-layer CIFAR-style ResNet (3x3 stem, one
# basic block in each of three stages of 16, 32 and 64 channels, parameter-free shortcuts).
_CLASSIFIER = {"stem": "cifar", "block": "basic", "width": 16, "shortcut": "A", "layers": (1, 1, 1)}
# What a saved run's options may ask for at most: far beyond any sensible value, and within what
# an evaluation can hold (100,000 samples of 64 x 64 RGB are about 5 GiB as floats).
MAX_SAMPLES = 100_000
MAX_MODES = 10_000
MAX_CLASSIFIER_STEPS = 1_000_000


def _check_limits(options: Any, limits: dict[str, int]) -> None:
    """A ValueError naming the first option of ``limits`` beyond its limit (or not a number)."""
    for name, limit in limits.items():
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value > limit:
            raise ValueError(f"{name} must be a whole number of at most {limit:,}, not {value!r}")


class _Adversarial(Task):
    """What both generation tasks share: two optimizers, the losses, the average, sampling."""

    pictures: ClassVar[dict[str, str]] = {
        SAMPLES_FILE: "Samples of one fixed batch of latents at the last evaluation"
    }
    model_protocol = protocols.AdversarialPair
    unit = "samples"
    generate_options = PictureOptions  # what Artifact.generate hands to generate()

    def load_state(self, state: dict[str, Any]) -> None:
        self.step = 0
        self._last_picture = None

    def _check_options(self) -> None:
        if self.options.loss not in ("non-saturating", "hinge"):
            raise ZooError(f"loss must be non-saturating or hinge, not '{self.options.loss}'")
        if not 0 <= self.options.ema < 1:
            raise ZooError(
                f"ema is a decay between 0 (off) and 1, like 0.999; not {self.options.ema}"
            )
        if not self.options.d_lr_ratio > 0:
            raise ZooError(f"d_lr_ratio must be positive, not {self.options.d_lr_ratio}")
        if getattr(self.options, "aux_weight", 0) < 0:
            raise ZooError(f"aux_weight must be 0 or more, not {self.options.aux_weight}")

    def model_config(self) -> dict[str, Any]:
        return {"keep_ema": self.options.ema > 0}

    def bind(self, model_config: Any) -> None:
        if self.options.ema > 0 and not protocols.keep_ema(model_config):
            raise ZooError("ema needs a model that holds an averaged generator (keep_ema=true)")
        self.latent_dim = model_config.latent_dim  # the latents train_batch draws

    def _latents(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        # From torch's global generator, as training_step drew them before they came with the
        # batch: one process trains as it did. (Every process holds that generator in the same
        # state, so each draws the same global latents and keeps its slice.)
        return torch.randn(batch_size, self.latent_dim)  # (B, L)

    def wrap_model(self, model: nn.Module, wrap: Any) -> Any:
        """Each player wrapped on its own: ``training_step`` calls them, not the model."""
        return _Players(model, wrap)

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self, model: nn.Module, config: Any) -> dict[str, Any]:
        """One AdamW per player; the spec's train defaults set DCGAN's betas (0.5, 0.999).

        The discriminator's learning rate is ``d_lr_ratio`` times the generator's (--lr).
        """
        d_lr = config.lr * self.options.d_lr_ratio
        return {
            "discriminator": adamw(model.discriminator.parameters(), config, lr=d_lr),
            "generator": adamw(model.generator.parameters(), config),
        }

    def training_step(
        self, model: nn.Module, batch: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    ) -> Iterator[tuple[str, torch.Tensor]]:
        # Real samples (B, ...), with their class labels (B,) for image data, and latents (B, L)
        # (drawn here when the batch has none).
        real, labels, z = _unpack(batch)
        conditional = protocols.num_classes(model) > 0
        labels = labels if conditional else None  # an unconditional model ignores the classes
        if z is None:
            z = torch.randn(real.shape[0], model.latent_dim, device=real.device)  # (B, L)
        weight = getattr(self.options, "diversity_weight", 0.0)
        half = real.shape[0] // 2 if weight > 0 else 0
        fake_labels = labels
        if half and labels is not None:  # the pairs of the diversity term share their class
            fake_labels = torch.cat([labels[:half], labels[:half], labels[2 * half :]])
        fake = _draw(model.generator, z, fake_labels)  # (B, ...)
        see = self.augment  # what the discriminator sees of real and of fake samples alike
        d_real, real_classes = self._split(model.discriminator(see(real)), conditional)
        d_fake, _ = self._split(model.discriminator(see(fake.detach())), conditional)  # no G grad
        if self.options.loss == "hinge":
            d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        else:  # -log D(x) - log(1 - D(G(z)))
            d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        if conditional:  # the discriminator learns the classes from real images only
            d_loss = d_loss + self.options.aux_weight * F.cross_entropy(real_classes, labels)
        yield "discriminator", d_loss
        # The Trainer has stepped the discriminator: the generator plays against the new one.
        g_logits, fake_classes = self._split(model.discriminator(see(fake)), conditional)  # (B,)
        # Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
        g_loss = -g_logits.mean() if self.options.loss == "hinge" else F.softplus(-g_logits).mean()
        if conditional:  # and its samples should look like the class they were drawn for
            g_loss = g_loss + self.options.aux_weight * F.cross_entropy(fake_classes, fake_labels)
        if half:
            g_loss = g_loss + weight * mode_seeking(fake, z, half)
        yield "generator", g_loss

    def augment(self, samples: torch.Tensor) -> torch.Tensor:
        """Samples as the discriminator sees them (the image task: a DiffAugment policy)."""
        return samples

    @staticmethod
    def _split(logits: torch.Tensor, conditional: bool) -> tuple[torch.Tensor, Any]:
        """A discriminator's output as ("real" logits (B,), class logits (B, K) or None)."""
        if not conditional:
            return logits, None
        return logits[:, 0], logits[:, 1:]

    @torch.no_grad()
    def after_step(self, model: nn.Module, step: int) -> None:
        self.step = step + 1
        average = protocols.generator_ema(model)
        if average is None or self.options.ema <= 0:
            return
        decay = min(self.options.ema, (1 + step) / (_EMA_WARMUP + step))
        for a, p in zip(average.parameters(), model.generator.parameters(), strict=True):
            a.lerp_(p, 1 - decay)
        for a, b in zip(average.buffers(), model.generator.buffers(), strict=True):
            a.copy_(b)  # batch-norm statistics are taken as they are

    # -- sampling ------------------------------------------------------------------------------
    @staticmethod
    def sampler(model: nn.Module) -> nn.Module:
        """The generator that samples: the weight average when the model holds one."""
        average = protocols.generator_ema(model)
        return average if average is not None else model.generator

    @torch.no_grad()
    def sample(
        self, model: nn.Module, num: int, seed: int | None = None, label: str | None = None
    ) -> torch.Tensor:
        """``num`` samples (float32, on the CPU) from the generator in eval mode.

        A class-conditional model draws class ``label`` (a class name), or by default every class
        in turn: sample i is of class i mod K, so a grid of K columns has one class per column.
        """
        if num < 1:
            raise ZooError(f"the number of samples must be at least 1, not {num}")
        labels = self._sample_labels(model, num, label)  # (N,) or None
        g = torch.Generator()
        if seed is None:
            g.seed()
        else:
            g.manual_seed(seed)
        z = torch.randn(num, model.latent_dim, generator=g)  # (N, L), drawn on the CPU
        generator = self.sampler(model)
        device = next(model.parameters()).device
        was_training = generator.training
        generator.eval()
        z_chunks = z.split(256)
        label_chunks = [None] * len(z_chunks) if labels is None else labels.to(device).split(256)
        try:
            out = [
                _draw(generator, c.to(device), y).float().cpu()
                for c, y in zip(z_chunks, label_chunks, strict=True)
            ]
        finally:
            generator.train(was_training)
        return torch.cat(out)

    def _sample_labels(self, model: nn.Module, num: int, label: str | None):
        classes = getattr(self, "classes", [])
        K = protocols.num_classes(model)
        if not K:
            if label is not None:
                raise ZooError("this model is not class-conditional: leave out --label")
            return None
        if label is None:
            return torch.arange(num) % K
        if label not in classes:
            raise ZooError(f"no class '{label}'; this model's classes are: {', '.join(classes)}")
        return torch.full((num,), classes.index(label))

    def generate(
        self, model: nn.Module, num: int = 64, seed: int | None = None, label: str | None = None
    ) -> torch.Tensor:
        """``num`` samples as a tensor (images in [-1, 1], or points); ``label`` picks the class
        of a class-conditional model's samples."""
        return self.sample(model, num, seed, label)

    def picture(self, samples: torch.Tensor):
        """A PIL image of samples (an image grid, a scatter plot)."""
        raise NotImplementedError

    def sample_to_file(
        self,
        model: nn.Module,
        num: int,
        out: str | Path,
        seed: int | None = None,
        label: str | None = None,
    ) -> Path:
        """Draw ``num`` samples and write their picture (atomically), in the image format that
        the file name's extension names (``.png``, ``.jpg``, ...)."""
        out = Path(out)
        image_format = plot.picture_format(out)
        if not out.parent.is_dir():
            raise ZooError(f"cannot write '{out}': folder '{out.parent}' does not exist")
        picture = self.picture(self.sample(model, num, seed, label))
        try:
            plot.save(picture, out, image_format)
        except OSError as exc:
            raise ZooError(f"cannot write '{out}': {exc.strerror or exc}") from None
        return out

    def _save_progress(self, samples: torch.Tensor) -> None:
        """The picture of this evaluation's fixed samples, under samples/ in the run folder."""
        self._last_picture = self.picture(samples)
        if self.run_dir is None:
            return
        folder = Path(self.run_dir) / SAMPLES_DIR
        folder.mkdir(exist_ok=True)
        plot.save(self._last_picture, folder / f"step-{self.step:06d}.png")

    def save_extras(self, run_dir: str | Path) -> None:
        """The last evaluation's samples as samples.png in the run folder."""
        if self._last_picture is None:
            return
        plot.save(self._last_picture, Path(run_dir) / SAMPLES_FILE)

    def outputs(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Samples of fixed latents and the discriminator's logits on ``batch``, flattened."""
        real, labels = batch if isinstance(batch, tuple) else (batch, None)
        z = torch.randn(real.shape[0], model.latent_dim, generator=torch.Generator().manual_seed(0))
        fake = _draw(self.sampler(model), z, labels if protocols.num_classes(model) else None)
        return torch.cat([fake.flatten(), model.discriminator(real).flatten()])


def mode_seeking(fake: torch.Tensor, z: torch.Tensor, half: int) -> torch.Tensor:
    """Mao et al.'s mode-seeking term (MSGAN, 2019), to be minimised: the inverse of how far
    apart the samples of two latents lie, per unit of distance between the latents. Pairs are
    sample i and sample ``half`` + i; a generator that collapses them onto one output pays."""
    apart = (fake[:half] - fake[half : 2 * half]).abs().mean()
    return 1 / (apart / (z[:half] - z[half : 2 * half]).abs().mean() + 1e-5)


def _unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(real samples, class labels or None, latents or None) of a batch: samples alone, samples
    and labels, or all three."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    return (*batch, None)[:3] if len(batch) == 2 else tuple(batch)


class _Players:
    """An adversarial pair as ``training_step`` sees it while training: ``generator`` and
    ``discriminator`` as the Trainer wrapped them (each in DistributedDataParallel, say), every
    other attribute the model's own."""

    def __init__(self, model: nn.Module, wrap: Any):
        self._model = model
        self.generator = wrap(model.generator)
        self.discriminator = wrap(model.discriminator)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def _draw(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Samples from latents ``(B, L)``, and class labels ``(B,)`` for a conditional generator."""
    return generator(z) if labels is None else generator(z, labels)


# -- toy-2d: points in the plane -------------------------------------------------------------------
@dataclass
class ToyOptions:
    loss: Literal["non-saturating", "hinge"] = "non-saturating"
    ema: float = 0.0  # decay of the generator's weight average used for sampling (0: off)
    d_lr_ratio: float = 1.0  # the discriminator's learning rate over the generator's
    modes: int = ring.MODES  # Gaussians on the ring
    radius: float = ring.RADIUS
    std: float = ring.STD  # of each Gaussian
    eval_samples: int = 2000  # samples drawn (from fixed latents) at each evaluation

    def __post_init__(self):
        _check_limits(self, {"modes": MAX_MODES, "eval_samples": MAX_SAMPLES})


class Toy2D(_Adversarial):
    """Learn a ring of Gaussians in the plane; count the modes the generator covers."""

    name = "toy-2d"
    try_command = "zoo generate {source} --out points.png"
    Options = ToyOptions
    metric = "val_modes"
    lower_is_better = False

    def setup(self, data: str | None, val_data: str | None = None, seed: int = 0) -> None:
        if data is not None or val_data is not None:
            raise ZooError(
                "toy-2d trains on its generated ring of Gaussians and reads no --data; "
                "shape the ring with --set modes=N, radius=R, std=S"
            )
        self._check_options()
        o = self.options
        if o.modes < 1 or o.radius <= 0 or o.std <= 0 or o.eval_samples < 1:
            raise ZooError("modes and eval_samples must be at least 1; radius and std positive")

    def setup_eval(self, data: str | None) -> None:
        if data is not None:
            raise ZooError("task 'toy-2d' generates its data; evaluate it without --data")
        self.setup(data)

    def bind(self, model_config: Any) -> None:
        super().bind(model_config)
        if getattr(model_config, "data_dim", 2) != 2:
            raise ZooError(
                "toy-2d samples points in the plane: data_dim must be 2, "
                f"not {model_config.data_dim}"
            )

    def describe_data(self) -> str:
        o = self.options
        return f"ring of {o.modes} Gaussians (radius {o.radius}, std {o.std}), generated"

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple:
        o = self.options
        points = ring.sample(batch_size, generator, o.modes, o.radius, o.std)  # (B, 2)
        return points, None, self._latents(batch_size, generator)

    def evaluate(self, model: nn.Module, batch_size: int, limit: int | None = None) -> dict:
        """Modes covered (of ``modes``) and the share of samples within 3 std of a mode.

        A mode counts as covered when at least a fifth of its fair share of the samples lie
        within 3 standard deviations of it.
        """
        o = self.options
        points = self.sample(model, o.eval_samples, _EVAL_SEED)  # (N, 2)
        mode, distance = ring.nearest_mode(points, o.modes, o.radius)
        good = distance < 3 * o.std
        counts = torch.bincount(mode[good], minlength=o.modes)
        covered = int((counts >= len(points) / (5 * o.modes)).sum())
        self._save_progress(points)
        return {"val_modes": covered, "val_quality": good.float().mean().item()}

    def example_batch(self, model_config: Any, batch_size: int = 2) -> torch.Tensor:
        return torch.randn(
            batch_size, model_config.data_dim, generator=torch.Generator().manual_seed(0)
        )

    def picture(self, samples: torch.Tensor):
        o = self.options
        return plot.draw_points(samples, ring.centres(o.modes, o.radius), 3 * o.std, o.radius)


# -- image-generation --------------------------------------------------------------------------
@dataclass
class ImageGenerationOptions:
    loss: Literal["non-saturating", "hinge"] = "non-saturating"
    ema: float = 0.0  # decay of the generator's weight average used for sampling (0: off)
    d_lr_ratio: float = 1.0  # the discriminator's learning rate over the generator's
    aux_weight: float = 1.0  # weight of the class terms of a class-conditional model's losses
    # What the discriminator sees: a DiffAugment policy, a comma-separated list of translation,
    # cutout and color (or none), applied alike to real and fake images.
    augment: str = "none"
    diversity_weight: float = 0.0  # weight of the mode-seeking term against collapse (0: off)
    num_images: int = shapes.DEFAULT_NUM  # size of the generated default data set
    val_fraction: float = 0.1  # held out (seeded) for the classifier's check
    classifier_steps: int = 1000  # steps of the scoring classifier (`resnet`); 0: no classifier
    classifier_size: int = 16  # it sees images downscaled to this size (cheap: seconds)
    confidence: float = 0.9  # a sample is "confident" when its likeliest class gets this much
    eval_samples: int = 512  # samples scored at each evaluation (from fixed latents)
    grid: int = 64  # samples in each progress picture under samples/
    # Processes decoding images as training reads them (0: decode all of them into memory
    # first), as image-classification's option. Default: 0, or up to 4 when the decoded images
    # would take more than 1 GiB.
    workers: int | None = None

    def __post_init__(self):
        _check_limits(
            self,
            {
                "num_images": MAX_NUM_IMAGES,
                "classifier_steps": MAX_CLASSIFIER_STEPS,
                "classifier_size": MAX_IMAGE_SIZE,
                "eval_samples": MAX_SAMPLES,
                "grid": MAX_SAMPLES,
            },
        )


class ImageGeneration(_Adversarial):
    """Learn to generate images like those of a folder (default: the generated shapes)."""

    name = "image-generation"
    try_command = "zoo generate {source} --num 64 --out grid.png"
    Options = ImageGenerationOptions
    metric = "val_class_score"
    lower_is_better = False

    def __init__(self, options: Any = None, **kwargs: Any):
        super().__init__(options, **kwargs)
        self.augmentations = parse_augment(self.options.augment)  # applied in every step

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        load_data_state(self, state)
        self.classifier = None
        self.classifier_accuracy = None
        self.real_confident = self.real_score = self.real_diversity = None

    def state(self) -> dict[str, Any]:
        return data_state(self)

    def setup(self, data: str | None, val_data: str | None = None, seed: int = 0) -> None:
        """Find the images (read in ``bind``, at the model's size) with the classification task."""
        self._check_options()
        o = self.options
        if (
            o.classifier_steps < 0
            or o.classifier_size < 8
            or o.eval_samples < 1
            or o.grid < 1
            or not 0 < o.confidence < 1
        ):
            raise ZooError(
                "classifier_steps must be at least 0, classifier_size at least 8, "
                "eval_samples and grid at least 1, confidence between 0 and 1"
            )
        if o.diversity_weight < 0:
            raise ZooError(f"diversity_weight must be 0 or more, not {o.diversity_weight}")
        self.source, self.val_source, self.seed = data, val_data, seed
        self._images = self._image_task()
        self._images.setup(data, val_data, seed)
        self.data_name, self.classes = self._images.data_name, list(self._images.classes)

    def _image_task(self):
        # No crops: the scoring classifier should fit the images as they are, in few steps.
        # Images read as image-classification reads them: all in memory, or decoded as they
        # are read (in `workers` processes) when they would take too much memory.
        opts = ImageOptions(
            val_fraction=self.options.val_fraction,
            num_images=self.options.num_images,
            pad=0,
            workers=self.options.workers,
        )
        images = ImageClassification(opts)
        images.min_classes = 1  # a GAN learns from one folder of images too (unconditionally)
        return images

    def augment(self, samples: torch.Tensor) -> torch.Tensor:
        if not self.augmentations:
            return samples
        return diff_augment(samples, self.augmentations)

    def model_config(self) -> dict[str, Any]:
        """Condition on the data's classes, if it has two or more (--set num_classes=0 for an
        unconditional model)."""
        classes = len(self.classes) if len(self.classes) > 1 else 0
        return {**super().model_config(), "num_classes": classes}

    def bind(self, model_config: Any) -> None:
        """Read the images at the model's size, then train the scoring classifier on them."""
        super().bind(model_config)
        bind_image_size(self, model_config.image_size, model_config.channels)
        if self.channels not in (1, 3):
            raise ZooError(f"images are grey (channels=1) or RGB (3), not {self.channels}")
        num_classes = getattr(model_config, "num_classes", 0)
        if num_classes and num_classes != len(self.classes):
            raise ZooError(
                f"the data has {len(self.classes)} classes but the model's num_classes is "
                f"{num_classes}; leave num_classes unset to condition on the data's classes, "
                "or set it to 0 for an unconditional model"
            )
        if not hasattr(self, "_images"):
            return  # a loaded task: sampling only
        self._read()
        self.train_x = self._images.train_x  # (N, C, S, S) uint8
        self.train_y = self._images.train_y  # (N,) class indices

    def _read(self) -> None:
        like = SimpleNamespace(
            image_size=self.image_size, in_channels=self.channels, num_classes=len(self.classes)
        )
        self._images.bind(like)
        # The classifier sees the images downscaled (the classification task resizes per batch).
        self._images.image_size = min(self.image_size, self.options.classifier_size)
        self.real_diversity = None  # of these images, measured at the first evaluation
        self._real: tuple[torch.Tensor, torch.Tensor] | None = None  # read at the first too
        self.classifier = self._fit_classifier()

    def setup_eval(self, data: str | None) -> None:
        self._images = self._image_task()
        if data is None:
            self._images.setup(
                self.source and trained_on(self.source),
                self.val_source and trained_on(self.val_source),
                self.seed,
            )
        else:
            self._images.setup(data, None, self.seed)
            if self._images.classes != self.classes:
                raise ZooError(
                    f"'{data}' has classes {', '.join(self._images.classes)}; "
                    f"the model was trained on {', '.join(self.classes)}"
                )
        self._read()

    def _fit_classifier(self) -> nn.Module | None:
        """A small ResNet trained on the training images for the sample metrics (seconds)."""
        if self.options.classifier_steps == 0 or len(self.classes) < 2:
            return None  # asked not to, or one class: nothing to tell apart
        torch.manual_seed(self.seed)  # the same classifier, hence comparable scores, every run
        net = ResNet(
            ResNetConfig(
                num_classes=len(self.classes),
                in_channels=self.channels,
                image_size=self._images.image_size,
                **_CLASSIFIER,
            )
        )
        steps = self.options.classifier_steps
        config = TrainConfig(
            steps=steps,
            batch_size=64,
            lr=2e-2,
            warmup=min(30, steps),
            weight_decay=0.0,
            eval_interval=steps + 1,
            log_interval=steps,
            seed=self.seed,
        )
        try:
            final = Trainer(net, self._images, config, None, progress=False).fit()
        except TrainingInterrupted as exc:  # before the GAN's run folder exists
            raise TrainingInterrupted(
                f"{exc} (while training the classifier of the sample metrics, before the GAN)",
                exit_code=exc.exit_code,
            ) from None
        self.classifier_accuracy = final.get("val_accuracy")
        self.real_confident = self.real_score = None
        return net.eval()

    def _to_uint8(self, images: torch.Tensor) -> torch.Tensor:
        return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)

    @torch.no_grad()
    def _classify(self, images: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Class probabilities ``(N, K)`` of uint8 images ``(N, C, S, S)``."""
        self.classifier.to(device)
        probs = [
            torch.softmax(self.classifier(self._images.normalise(c).to(device)).float(), 1).cpu()
            for c in images.split(256)
        ]
        return torch.cat(probs)

    def train_batch(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Real images ``(B, C, S, S)`` in [-1, 1], their class labels ``(B,)`` and latents."""
        idx = torch.randint(len(self.train_x), (batch_size,), generator=generator)
        images = self.train_x[idx].float() / 127.5 - 1
        # The latents come from torch's global generator: the next draw from `generator` is
        # the next batch's images, decoded (when decoded as read) while this batch trains.
        prefetch_next(self.train_x, batch_size, generator)
        return images, self.train_y[idx], self._latents(batch_size, generator)

    def _real_images(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The held-out images the samples are compared with, and their classes, in memory:
        all of them, or of more than ``STATS_IMAGES``, that many spread evenly over them (so
        that memory stays flat however many there are). Read once."""
        if getattr(self, "_real", None) is None:
            self._real = spread(self._images.val_x, self._images.val_y, STATS_IMAGES)
        return self._real

    def describe_data(self) -> str:
        n = len(getattr(self, "train_x", ()))
        return f"{self.data_name} ({n} training images, {len(self.classes)} classes)"

    def evaluate(self, model: nn.Module, batch_size: int, limit: int | None = None) -> dict:
        """The samples of fixed latents, scored by the classifier (when there is one):

        ``val_class_score``, the Inception Score of Salimans et al. (2016) with this classifier in
        Inception's place: the exponential of the mean KL divergence of each sample's class
        probabilities from their average, which is 1 when the classifier sees every sample alike
        (a collapsed generator, or noise) and the number of classes when each sample is
        confidently one class and the classes come equally often; ``val_real_class_score``, the
        same of real held-out images, for scale; ``val_confident``, the share it classifies with at least ``confidence``; ``val_classes``,
        how many classes receive at least a fifth of their fair share of confident samples;
        ``val_real_confident``, the same share on real held-out images, for scale; for a
        class-conditional model, ``val_class_match``, the share it puts in the class each sample
        was drawn for (the samples go through the classes in turn). Always:
        ``val_colour_gap``, the mean absolute difference of per-channel means and standard
        deviations between samples and real images (on a 0-1 scale); ``val_diversity``, the mean
        absolute pixel difference (0-1) between two samples drawn for one class (any two, for an
        unconditional model), and ``val_real_diversity``, the same between two real held-out
        images of one class: samples collapsed onto a few looks score far below the real images.
        """
        n = self.options.eval_samples
        samples = self.sample(model, max(n, self.options.grid), _EVAL_SEED)  # (N, C, S, S)
        self._save_progress(samples[: self.options.grid])
        fake = self._to_uint8(samples[:n])
        real, real_labels = self._real_images()
        wanted = self._sample_labels(model, n, None)  # the classes the samples were drawn for
        if self.real_diversity is None:
            real_groups = real_labels if wanted is not None else None
            self.real_diversity = diversity(real, real_groups)
        metrics = {
            "val_colour_gap": colour_gap(fake, real),
            "val_diversity": diversity(fake, wanted),
            "val_real_diversity": self.real_diversity,
        }
        if self.classifier is None:
            return metrics
        device = next(model.parameters()).device
        K, threshold = len(self.classes), self.options.confidence
        if self.real_confident is None:
            probs = self._classify(real, device)
            self.real_confident = (probs.max(1).values >= threshold).float().mean().item()
            self.real_score = class_score(probs)
        probs = self._classify(fake, device)  # (N, K)
        confidence, predicted = probs.max(1)
        sure = confidence >= threshold
        counts = torch.bincount(predicted[sure], minlength=K)
        metrics.update(
            val_class_score=class_score(probs),
            val_real_class_score=self.real_score,
            val_confident=sure.float().mean().item(),
            val_classes=int((counts >= n / (5 * K)).sum()),
            val_real_confident=self.real_confident,
        )
        if wanted is not None:
            metrics["val_class_match"] = (predicted == wanted).float().mean().item()
        return metrics

    def example_batch(
        self, model_config: Any, batch_size: int = 2
    ) -> tuple[torch.Tensor, torch.Tensor]:
        C, S = model_config.channels, model_config.image_size
        g = torch.Generator().manual_seed(0)
        images = torch.rand(batch_size, C, S, S, generator=g) * 2 - 1
        return images, torch.randint(max(model_config.num_classes, 1), (batch_size,), generator=g)

    def picture(self, samples: torch.Tensor):
        return plot.image_grid(self._to_uint8(samples))
