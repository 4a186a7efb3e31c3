"""The generation tasks (toy-2d, image-generation): data, the two-player step, metrics, sampling."""

import json
import re

import pytest
import torch
import torch.nn.functional as F
from zoo_gan import ring
from zoo_gan.tasks import ImageGeneration, ImageGenerationOptions, Toy2D, ToyOptions
from zoo_testutil import run_zoo

from zoo_core import ZooError, create_model, load, train
from zoo_core.training.config import TrainConfig

# A small MLP GAN that learns the ring in a few hundred steps.
SMALL_MLP = {"hidden": 64, "latent_dim": 4}


def test_the_ring_is_seeded_and_sits_on_its_circle():
    a = ring.sample(500, torch.Generator().manual_seed(3))
    b = ring.sample(500, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    centres = ring.centres()
    assert centres.shape == (8, 2)
    assert torch.allclose(centres.norm(dim=1), torch.full((8,), 2.0))
    mode, distance = ring.nearest_mode(a)
    assert distance.max() < 6 * ring.STD  # every point is near the mode it was drawn from
    assert set(mode.tolist()) == set(range(8))


def _hand_losses(model, real, z, loss):
    fake = model.generator(z)
    d_real, d_fake = model.discriminator(real), model.discriminator(fake)
    if loss == "hinge":
        return torch.relu(1 - d_real).mean() + torch.relu(1 + d_fake).mean(), -d_fake.mean()
    return (
        torch.nn.functional.softplus(-d_real).mean() + torch.nn.functional.softplus(d_fake).mean(),
        torch.nn.functional.softplus(-d_fake).mean(),
    )


@pytest.mark.parametrize("loss", ["non-saturating", "hinge"])
def test_the_generator_loss_is_computed_after_the_discriminator_step(loss):
    torch.manual_seed(0)
    model = create_model("gan-mlp", **SMALL_MLP)
    task = Toy2D(ToyOptions(loss=loss))
    optimizers = task.configure_optimizers(model, TrainConfig(lr=1e-2))
    assert set(optimizers) == {"discriminator", "generator"}
    d_params = {id(p) for g in optimizers["discriminator"].param_groups for p in g["params"]}
    assert d_params == {id(p) for p in model.discriminator.parameters()}
    real = ring.sample(64, torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    steps = task.training_step(model, real)
    name, d_loss = next(steps)
    assert name == "discriminator"
    torch.manual_seed(5)
    z = torch.randn(64, model.latent_dim)  # the latents the step drew
    with torch.no_grad():
        expected_d, g_before = _hand_losses(model, real, z, loss)
    assert torch.allclose(d_loss, expected_d)
    optimizers["discriminator"].zero_grad()
    d_loss.backward()
    optimizers["discriminator"].step()
    name, g_loss = next(steps)
    assert name == "generator"
    with torch.no_grad():
        _, g_after = _hand_losses(model, real, z, loss)
    # The generator plays against the stepped discriminator, not the one before the step.
    assert torch.allclose(g_loss, g_after) and not torch.allclose(g_loss, g_before)
    assert list(steps) == []


def test_the_weight_average_follows_the_generator():
    model = create_model("gan-mlp", **SMALL_MLP, keep_ema=True)
    assert not any(p.requires_grad for p in model.generator_ema.parameters())
    assert any(k.startswith("generator_ema.") for k in model.state_dict())
    task = Toy2D(ToyOptions(ema=0.9))
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(1.0)
    gap = lambda: sum(  # noqa: E731
        (a - p).abs().sum().item()
        for a, p in zip(model.generator_ema.parameters(), model.generator.parameters(), strict=True)
    )
    before = gap()
    task.after_step(model, 100)
    assert gap() == pytest.approx(before * 0.9, rel=1e-4)  # moved 1 - decay of the way
    # Sampling uses the average.
    assert torch.equal(
        task.sample(model, 5, seed=1),
        model.generator_ema(
            torch.randn(5, model.latent_dim, generator=torch.Generator().manual_seed(1))
        ),
    )


def test_ema_needs_a_model_that_keeps_an_average():
    task = Toy2D(ToyOptions(ema=0.99))
    assert task.model_config() == {"keep_ema": True}
    with pytest.raises(ZooError, match="keep_ema"):
        task.bind(create_model("gan-mlp").config)
    with pytest.raises(ZooError, match="between 0"):
        Toy2D(ToyOptions(ema=1.5)).setup(None)
    with pytest.raises(ZooError, match="reads no --data"):
        Toy2D().setup("points.csv")
    with pytest.raises(ZooError, match="evaluate it without --data"):
        Toy2D().setup_eval("points.csv")


def test_a_short_toy_run_covers_more_modes(tmp_path):
    _, final = train(
        "gan-mlp",
        out=tmp_path / "run",
        progress=False,
        steps=600,
        lr=2e-3,
        batch_size=128,
        overrides={**SMALL_MLP, "eval_interval": 100, "eval_samples": 1000},
    )
    evals = [
        json.loads(line)
        for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        if "val_modes" in line
    ]
    first, last = evals[0], evals[-1]
    assert last["val_modes"] >= first["val_modes"] + 3, evals
    assert last["val_quality"] > first["val_quality"] + 0.1, evals
    assert final["val_modes"] == last["val_modes"]
    # A picture per evaluation, from the same latents, and the last one beside the weights.
    pictures = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert pictures == [f"step-{s:06d}.png" for s in range(100, 601, 100)]
    assert (tmp_path / "run" / "samples.png").is_file()


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "toy"
    proc = run_zoo(
        "train",
        "gan-mlp",
        "--steps",
        "40",
        "--out",
        out,
        "--quiet",
        "--set",
        "hidden=32",
        "--set",
        "ema=0.9",
    )
    done = proc.stdout.splitlines()[0]
    assert done.startswith("done: 40 steps in ") and " val_modes " in done
    assert int(done.split(" val_modes ")[1].split()[0]) in range(9)  # a count: 5, not 5.0000
    return out


def test_generate_with_a_seed_writes_the_same_picture_twice(toy_run, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    proc = run_zoo("generate", toy_run, "--num", "300", "--out", a, "--seed", "7")
    assert "wrote 300 samples" in proc.stdout
    run_zoo("generate", toy_run, "--num", "300", "--out", b, "--seed", "7")
    assert a.read_bytes() == b.read_bytes()
    artifact = load(toy_run)
    artifact.task.sample_to_file(artifact.model, 300, c, seed=8)
    assert a.read_bytes() != c.read_bytes()
    from PIL import Image

    assert Image.open(a).size == (512, 512)
    # Without --out, or into a missing folder: one clear error, nothing written.
    proc = run_zoo("generate", toy_run, check=False)
    assert proc.returncode != 0 and "--out" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(ZooError, match="does not exist"):
        artifact.task.sample_to_file(artifact.model, 4, tmp_path / "no" / "x.png")


def test_generate_writes_the_format_the_extension_names(toy_run, tmp_path):
    from PIL import Image

    for name, image_format in [("grid.jpg", "JPEG"), ("grid.WEBP", "WEBP"), ("grid.png", "PNG")]:
        run_zoo("generate", toy_run, "--num", "50", "--out", tmp_path / name, "--seed", "1")
        with Image.open(tmp_path / name) as picture:
            assert picture.format == image_format and picture.size == (512, 512)
    # The options of a language model are an error here, not ignored.
    proc = run_zoo(
        "generate", toy_run, "--out", tmp_path / "t.png", "--temperature", "2", check=False
    )
    assert proc.returncode != 0 and "--temperature is for language models" in proc.stderr
    # An extension that names no picture format: one clear line, nothing written.
    proc = run_zoo("generate", toy_run, "--out", tmp_path / "points.txt", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "cannot tell a picture format from 'points.txt'" in proc.stderr and ".png" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.WEBP", "grid.jpg", "grid.png"]


def test_a_loaded_model_samples_what_the_trained_one_did(toy_run):
    card = (toy_run / "README.md").read_text()
    assert "](samples.png)" in card and (toy_run / "samples.png").is_file()
    assert "- val_modes: " in card and "- val_modes: 8.0" not in card  # a count, not 8.0000
    artifact = load(toy_run)
    assert artifact.model.generator_ema is not None  # the average was saved and restored
    first = artifact.generate(num=16, seed=3)
    assert first.shape == (16, 2)
    assert torch.equal(first, load(toy_run).generate(num=16, seed=3))
    metrics = artifact.evaluate()  # `zoo eval`: the ring metrics on fixed samples
    assert set(metrics) == {"val_modes", "val_quality"} and 0 <= metrics["val_modes"] <= 8
    # `zoo eval` prints the count of modes as a count, the share as a fraction.
    lines = run_zoo("eval", toy_run).stdout.splitlines()
    assert lines == [
        f"val_modes: {metrics['val_modes']}",
        f"val_quality: {metrics['val_quality']:.4f}",
    ]


def test_a_diverging_gan_stops_with_a_clear_message(tmp_path):
    out = tmp_path / "run"
    proc = run_zoo(
        "train", "gan-mlp", "--steps", "50", "--lr", "1e30", "--out", out, "--quiet",
        "--set", "hidden=16", "--set", "checkpoint_interval=1", check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    # The message names the player whose loss went bad and says what to try.
    assert re.search(r"the loss of (generator|discriminator) became (nan|inf|-inf)", proc.stderr)
    assert "--lr" in proc.stderr
    # It diverges at once, before a checkpoint: that is said, and no folder is left of it.
    assert "became nan at step 1; nothing was saved" in proc.stderr and not out.exists()


def test_image_generation_scores_samples_with_a_classifier(tmp_path):
    """A tiny DCGAN run end to end: the classifier-based metrics, progress grids, a grid file."""
    out = tmp_path / "run"
    run_zoo(
        "train",
        "gan",
        "--steps",
        "6",
        "--batch-size",
        "8",
        "--out",
        out,
        "--quiet",
        "--set",
        "image_size=16",
        "--set",
        "width=4",
        "--set",
        "latent_dim=8",
        "--set",
        "num_images=400",
        "--set",
        "classifier_steps=40",
        "--set",
        "classifier_size=8",
        "--set",
        "eval_samples=64",
        "--set",
        "grid=16",
        "--set",
        "confidence=0.5",
        "--set",
        "eval_interval=3",
    )
    evals = [
        json.loads(line)
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if "val_confident" in line
    ]
    assert [e["step"] for e in evals] == [3, 6]
    final = evals[-1]
    assert 0 <= final["val_confident"] <= 1 and 0 <= final["val_classes"] <= 8
    assert 1 <= final["val_class_score"] <= 8
    assert 0 <= final["val_class_match"] <= 1  # conditioned on the 8 classes by default
    assert json.loads((out / "config.json").read_text())["model_config"]["num_classes"] == 8
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "step-000003.png",
        "step-000006.png",
    ]
    grid = tmp_path / "grid.png"
    run_zoo("generate", out, "--num", "9", "--out", grid, "--seed", "1")
    from PIL import Image

    cell = 16 * 4 + 2  # each 16-pixel image scaled up four times, with a 2-pixel gap
    assert Image.open(grid).size == (3 * cell + 2, 3 * cell + 2)
    # One class on request; a class the model does not know is one clear line.
    stars = tmp_path / "stars.png"
    run_zoo("generate", out, "--num", "4", "--out", stars, "--seed", "1", "--label", "star")
    assert Image.open(stars).size == (2 * cell + 2, 2 * cell + 2)
    result = run_zoo("generate", out, "--num", "4", "--out", stars, "--label", "dog", check=False)
    assert result.returncode != 0 and "no class 'dog'" in result.stderr
    assert "Traceback" not in result.stderr


def test_image_generation_reads_an_image_folder_and_rejects_bad_options(tmp_path):
    from zoo_core.data.shapes import write_folder

    folder = write_folder(tmp_path / "imgs", num=24, size=16)
    task = ImageGeneration(ImageGenerationOptions(classifier_steps=0))
    task.setup(str(folder))
    task.bind(create_model("gan", image_size=16, width=4, latent_dim=8).config)
    images, labels, latents = task.train_batch(5, torch.Generator().manual_seed(0))
    assert latents.shape == (5, 8)  # drawn with the batch: sliced with it across processes
    assert images.shape == (5, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    assert labels.shape == (5,) and labels.dtype == torch.int64 and 0 <= labels.min() <= 7
    assert len(task.classes) == 8 and task.classifier is None
    # The model is conditioned on the folder's classes unless told otherwise.
    assert task.model_config()["num_classes"] == 8
    with pytest.raises(ZooError, match="the data has 8 classes but the model's num_classes is 3"):
        task.bind(create_model("gan", image_size=16, width=4, num_classes=3).config)
    with pytest.raises(ZooError, match="non-saturating or hinge"):
        ImageGeneration(ImageGenerationOptions(loss="wasserstein")).setup(None)


def test_a_gan_learns_from_a_single_folder_of_images_unconditionally(tmp_path):
    """One class folder (like the DCGAN tutorial's CelebA): no classes to condition on or score."""
    from PIL import Image

    from zoo_core.data.shapes import generate

    folder = tmp_path / "photos" / "all"
    folder.mkdir(parents=True)
    images, _ = generate(20, seed=3, size=16)
    for i, image in enumerate(images):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i}.png")
    tiny = {
        "progress": False,
        "steps": 2,
        "batch_size": 4,
        "overrides": {"image_size": 16, "width": 4, "latent_dim": 8, "eval_samples": 8, "grid": 4},
    }
    artifact, final = train("gan", data=tmp_path / "photos", out=tmp_path / "run", **tiny)
    assert artifact.model.num_classes == 0 and artifact.config.model_config["num_classes"] == 0
    assert "val_colour_gap" in final and "val_confident" not in final
    assert "val_class_match" not in final
    assert artifact.generate(num=3, seed=0).shape == (3, 3, 16, 16)
    with pytest.raises(ZooError, match="not class-conditional"):
        artifact.generate(num=3, seed=0, label="all")
    # Classification still needs two classes.
    from zoo_core.tasks.image import ImageClassification

    with pytest.raises(ZooError, match="needs two or more"):
        ImageClassification().setup(str(tmp_path / "photos"))
    # A folder of the images themselves, with no sub-folder, is the same data set to a GAN.
    flat = train("gan", data=folder, out=tmp_path / "flat", **tiny)[0]
    assert flat.model.num_classes == 0 and flat.config.task_state["classes"] == ["images"]
    assert set(flat.evaluate()) == set(artifact.evaluate())
    with pytest.raises(ZooError, match="has no sub-folders"):  # but no classes to classify
        ImageClassification().setup(str(folder))


def _generation(folder, workers):
    options = ImageGenerationOptions(
        classifier_steps=20, classifier_size=8, eval_samples=16, grid=4, workers=workers
    )
    task = ImageGeneration(options)
    task.setup(str(folder), seed=2)
    task.bind(create_model("gan", image_size=16, width=4, latent_dim=8).config)
    return task


def test_image_generation_decodes_images_as_read_with_the_batches_and_metrics_of_memory(
    tmp_path,
):
    """With workers (as a data set over 1 GiB decoded gets by default), the images are decoded
    as batches are drawn: the batches, the scoring classifier and the metrics are those of the
    images in memory, and a run restarted from the generator's state reads the same batches."""
    from zoo_core.data.images import LazyImages
    from zoo_core.data.shapes import write_folder

    folder = write_folder(tmp_path / "imgs", num=48, size=16)
    eager, lazy = _generation(folder, 0), _generation(folder, 2)
    assert isinstance(eager.train_x, torch.Tensor) and isinstance(lazy.train_x, LazyImages)
    assert isinstance(lazy._images.val_x, LazyImages)
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for _ in range(3):
        torch.manual_seed(0)  # the latents come from torch's global generator
        xa, ya, za = eager.train_batch(6, a)
        torch.manual_seed(0)
        xb, yb, zb = lazy.train_batch(6, b)
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(za, zb)
    # Resumed: the generator's state restored, nothing prefetched yet; the same batches follow.
    saved = b.get_state()
    expected = [lazy.train_batch(6, b)[:2] for _ in range(2)]
    again = _generation(folder, 2)
    restored = torch.Generator().set_state(saved)
    for x, y in expected:
        rx, ry, _ = again.train_batch(6, restored)
        assert torch.equal(rx, x) and torch.equal(ry, y)
    torch.manual_seed(1)
    model = create_model("gan", image_size=16, width=4, latent_dim=8, num_classes=8)
    assert eager.classifier_accuracy == lazy.classifier_accuracy
    assert eager.evaluate(model, 8) == lazy.evaluate(model, 8)
    for task in (lazy, again):
        task.train_x.close()
        task._images.val_x.close()


@pytest.mark.slow
def test_a_gan_on_images_decoded_as_read_resumes_bit_identically_after_sigkill(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    from zoo_core.data.shapes import write_folder

    folder = write_folder(tmp_path / "imgs", num=64, size=16)
    args = [
        "train", "gan", "--data", folder, "--steps", "120", "--batch-size", "8", "--quiet",
        "--set", "image_size=16", "--set", "width=4", "--set", "d_width=4", "--set",
        "latent_dim=8", "--set", "classifier_steps=0", "--set", "eval_samples=16", "--set",
        "grid=4", "--set", "workers=1", "--set", "checkpoint_interval=10",
    ]  # fmt: skip
    run_zoo(*args, "--out", tmp_path / "straight")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo_core", *map(str, args), "--out", str(killed)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its decoding workers are in its process group
    )
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "step-00000010").is_dir():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    saved = sorted(p.name for p in (killed / "checkpoints").glob("step-*"))
    assert saved[-1] < "step-00000120", saved  # stopped before it finished
    run_zoo("train", "--resume", killed, "--quiet")
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _Images(torch.nn.Module):
    def __init__(self, images):
        super().__init__()
        self.register_buffer("images", images)

    def forward(self, z):
        return self.images[: len(z)]


class _Replay(torch.nn.Module):
    """A stand-in GAN whose generator returns given images: the metric's reference points."""

    def __init__(self, images):
        super().__init__()
        self.latent_dim = 4
        self.generator = _Images(images)
        self.discriminator = torch.nn.Linear(1, 1)


class _ImagesOfClass(torch.nn.Module):
    """For each requested label, a real image of class ``label + shift`` (mod K)."""

    def __init__(self, images, labels, shift):
        super().__init__()
        self.register_buffer("images", images)
        self.register_buffer("labels", labels)
        self.shift = shift

    def forward(self, z, wanted):
        K = int(self.labels.max()) + 1
        picks = []
        for i, k in enumerate(((wanted + self.shift) % K).tolist()):
            of_class = (self.labels == k).nonzero().flatten()
            picks.append(of_class[i % len(of_class)])
        return self.images[torch.stack(picks)]


class _ConditionalReplay(_Replay):
    def __init__(self, images, labels, shift=0):
        super().__init__(images)
        self.num_classes = int(labels.max()) + 1
        self.generator = _ImagesOfClass(images, labels, shift)


def test_diversity_is_the_mean_pixel_difference_within_a_class():
    from zoo_gan.metrics import diversity

    black, white = torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.full((1, 3, 4, 4), 255)
    images = torch.cat([black, white.to(torch.uint8), black, black])
    assert diversity(images, None) == pytest.approx(0.5)  # 3 of the 6 pairs differ fully
    assert diversity(images, torch.tensor([0, 0, 1, 1])) == pytest.approx(0.5)  # 1 and 0
    assert diversity(images, torch.tensor([0, 1, 0, 2])) == 0  # the lone image counts not


def test_the_class_score_runs_from_one_for_a_single_look_to_the_number_of_classes():
    from zoo_gan.metrics import class_score

    sure = torch.eye(4).repeat(5, 1)  # (20, 4): each class 5 times, each with certainty
    assert class_score(sure) == pytest.approx(4.0)
    assert class_score(torch.eye(4)[[2] * 20]) == pytest.approx(1.0)  # collapsed onto one class
    assert class_score(torch.full((20, 4), 0.25)) == pytest.approx(1.0)  # nothing recognised
    assert class_score(torch.eye(4)[[0, 1] * 10]) == pytest.approx(2.0)  # two classes of four
    unsure = 0.7 * sure + 0.3 / 4  # the same classes, less certain: between the two
    assert 1.0 < class_score(unsure) < 4.0


def test_the_classifier_score_of_real_and_of_blank_images():

    options = ImageGenerationOptions(
        num_images=800, classifier_steps=60, classifier_size=8, eval_samples=80, grid=4
    )
    task = ImageGeneration(options)
    task.setup(None)
    task.bind(create_model("gan", image_size=16, width=4, latent_dim=4).config)
    assert task.classifier is not None and len(task._images.val_y) == 80
    real = task._images.val_x.float() / 127.5 - 1  # the held-out images, as a generator's output
    metrics = task.evaluate(_Replay(real), 32)
    # Samples that are the real images score exactly what the real images score.
    assert metrics["val_confident"] == pytest.approx(metrics["val_real_confident"])
    assert metrics["val_class_score"] == pytest.approx(metrics["val_real_class_score"])
    assert 1.5 < metrics["val_real_class_score"] <= 8  # a weak classifier, yet it tells classes
    assert metrics["val_colour_gap"] < 1e-3
    assert metrics["val_diversity"] == pytest.approx(metrics["val_real_diversity"])
    assert 0.05 < metrics["val_real_diversity"] < 0.6
    # One blank picture, 80 times: whatever the classifier says, it says it for one class.
    blank = task.evaluate(_Replay(torch.zeros(80, 3, 16, 16)), 32)
    assert blank["val_classes"] <= 1 and blank["val_confident"] in (0.0, 1.0)
    assert blank["val_class_score"] == pytest.approx(1.0)  # ranked last, however confident
    assert blank["val_colour_gap"] > 0.1
    assert blank["val_diversity"] == 0  # one picture, 80 times: no diversity at all
    assert "val_class_match" not in metrics  # an unconditional model has no classes to match
    # A conditional "generator" that answers each class with a real image of that class matches
    # about as often as this (weak, 60-step) classifier is right, well above chance (1/8); one
    # that answers with the next class matches only where the classifier confuses the two.
    labels = task._images.val_y
    right = task.evaluate(_ConditionalReplay(real, labels), 32)["val_class_match"]
    wrong = task.evaluate(_ConditionalReplay(real, labels, shift=1), 32)["val_class_match"]
    assert right == pytest.approx(task.classifier_accuracy, abs=0.1)
    assert right > 0.25 and right >= wrong + 0.15, (right, wrong)


def test_diff_augment_shifts_and_cuts_each_image_its_own_way():
    from zoo_gan.augment import diff_augment

    torch.manual_seed(0)
    dots = torch.zeros(256, 3, 32, 32)
    dots[:, :, 10, 20] = 1.0
    moved = diff_augment(dots, ("translation",))
    assert moved.shape == dots.shape and torch.equal(moved.sum((1, 2, 3)), torch.full((256,), 3.0))
    where = torch.stack([(m[0] == 1).nonzero()[0] for m in moved])  # (256, 2): row, column
    shifts = where - torch.tensor([10, 20])
    # Up to an eighth of the size (4 pixels) each way, every shift drawn, all channels alike.
    assert set(shifts[:, 0].tolist()) == set(range(-4, 5)) == set(shifts[:, 1].tolist())
    assert torch.equal(moved[:, 0], moved[:, 2])
    # What comes in from outside the image is 0.
    ones = diff_augment(torch.ones(256, 1, 32, 32), ("translation",))
    assert ones.min() == 0 and (ones == 0).any(0).any() and (ones == 1).sum() >= 256 * 28 * 28
    # Cutout: a 16x16 square (cut where it crosses the border) set to 0, anywhere.
    holes = diff_augment(torch.ones(256, 3, 32, 32), ("cutout",)) == 0  # (256, 3, 32, 32)
    for hole in holes[:, 0]:
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert hole.sum() == len(rows) * len(cols) and 8 <= len(rows) <= 16 and 8 <= len(cols) <= 16
    assert (holes[:, 0].sum((1, 2)) == 256).any() and holes.any(0).all()
    # Colour: brightness, saturation, contrast; differentiable throughout, seeded by torch's RNG.
    x = (torch.rand(8, 3, 32, 32) * 2 - 1).requires_grad_(True)
    torch.manual_seed(1)
    y = diff_augment(x, ("color", "translation", "cutout"))
    torch.manual_seed(1)
    assert torch.equal(y, diff_augment(x, ("color", "translation", "cutout")))
    assert not torch.allclose(y, x)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_the_discriminator_sees_real_and_fake_images_through_the_augmentation():
    from zoo_gan.augment import diff_augment

    torch.manual_seed(0)
    model = create_model("gan", image_size=16, width=4, latent_dim=8)  # unconditional
    task = ImageGeneration(ImageGenerationOptions(augment="cutout,translation"))
    real = torch.rand(6, 3, 16, 16) * 2 - 1
    torch.manual_seed(5)
    _, d_loss = next(task.training_step(model, (real, torch.zeros(6, dtype=torch.long))))
    torch.manual_seed(5)  # the same draws, by hand: latents, then each augmentation in turn
    with torch.no_grad():
        fake = model.generator(torch.randn(6, 8))
        names = ("cutout", "translation")
        d_real = model.discriminator(diff_augment(real, names))
        d_fake = model.discriminator(diff_augment(fake, names))
    expected = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    assert torch.allclose(d_loss, expected)
    with torch.no_grad():  # and not the plain images
        plain = (
            F.softplus(-model.discriminator(real)).mean()
            + F.softplus(model.discriminator(fake)).mean()
        )
    assert not torch.allclose(d_loss, plain)


def test_the_diversity_term_pairs_latents_of_one_class_and_pays_for_collapse():
    from zoo_gan.tasks import mode_seeking

    z = torch.randn(8, 4)
    same = torch.ones(8, 3, 2, 2)
    assert mode_seeking(same, z, 4) > 1e4  # collapsed pairs cost a lot
    apart = torch.cat([torch.zeros(4, 3, 2, 2), torch.ones(4, 3, 2, 2)])
    z = torch.cat([torch.zeros(4, 4), torch.full((4, 4), 0.5)])
    assert mode_seeking(apart, z, 4) == pytest.approx(0.5, rel=1e-4)  # 1 / (1 / 0.5)
    # In a conditional step, the two latents of a pair are drawn for the same class.
    model = create_model("gan", image_size=16, width=4, latent_dim=8, num_classes=3)
    drawn = []
    model.generator.register_forward_pre_hook(lambda _, args: drawn.append(args[1].clone()))
    task = ImageGeneration(ImageGenerationOptions(diversity_weight=1.0))
    real, labels = torch.rand(7, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 2, 1, 0, 1])
    list(task.training_step(model, (real, labels)))
    assert drawn[0].tolist() == [0, 1, 2, 0, 1, 2, 1]
    # The generator's loss carries the weighted term (an unconditional model draws no labels).
    model = create_model("gan", image_size=16, width=4, latent_dim=8)
    losses = []
    for weight in (0.0, 2.0):
        torch.manual_seed(3)
        steps = ImageGeneration(ImageGenerationOptions(diversity_weight=weight)).training_step(
            model, (real, labels)
        )
        next(steps)  # the discriminator is not stepped: both runs see the same one
        losses.append(next(steps)[1])
    torch.manual_seed(3)
    z = torch.randn(7, 8)
    with torch.no_grad():
        term = mode_seeking(model.generator(z), z, 3)
    assert (losses[1] - losses[0]).item() == pytest.approx(2.0 * term.item(), rel=1e-4)


def test_augment_and_diversity_options_are_checked(tmp_path):

    with pytest.raises(ZooError, match="unknown augmentation 'blur'"):
        ImageGeneration(ImageGenerationOptions(augment="translation,blur")).setup(None)
    with pytest.raises(ZooError, match="diversity_weight must be 0 or more"):
        ImageGeneration(ImageGenerationOptions(diversity_weight=-1)).setup(None)
    result = run_zoo(
        "train", "gan", "--out", tmp_path / "run", "--set", "augment=flip", check=False
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "unknown augmentation 'flip'" in result.stderr
    assert not (tmp_path / "run").exists()
