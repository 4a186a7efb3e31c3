"""The image-classification task: the shapes data, the folder reader, training, metrics, predict."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import zoo_core
from zoo_core.data import images as image_data
from zoo_core.data import shapes
from zoo_core.errors import ZooError
from zoo_core.tasks.image import ImageClassification, ImageOptions

TINY_RESNET = ["--set", "width=4", "--batch-size", "8", "--quiet"]


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory):
    """The default data written by `zoo data shapes` (48 images), plus one corrupt file."""
    from zoo_testutil import run_zoo

    out = tmp_path_factory.mktemp("data") / "shapes"
    proc = run_zoo("data", "shapes", "--out", out, "--num", "48", "--seed", "1")
    assert "48" in proc.stdout
    (out / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return out


def _config(image_size=32, in_channels=3, num_classes=8):
    return SimpleNamespace(image_size=image_size, in_channels=in_channels, num_classes=num_classes)


def test_shapes_are_seeded_balanced_and_varied():
    x, y = shapes.generate(64, seed=3)
    assert x.shape == (64, 3, 32, 32) and x.dtype == np.uint8
    assert np.bincount(y, minlength=len(shapes.CLASSES)).tolist() == [8] * len(shapes.CLASSES)
    x2, y2 = shapes.generate(64, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, shapes.generate(64, seed=4)[0])
    # Varied backgrounds: the images of one class do not share a colour.
    circles = x[y == 0].reshape(8, 3, -1).mean(axis=2)
    assert circles.std(axis=0).min() > 10


def test_data_shapes_writes_an_image_folder(shapes_folder, zoo):
    dirs = sorted(p.name for p in shapes_folder.iterdir())
    assert dirs == sorted(shapes.CLASSES)
    pngs = sorted(shapes_folder.rglob("*.png"))
    assert len(pngs) == 48 + 1
    with Image.open(
        shapes_folder
        / "square"
        / next(iter(sorted(p.name for p in (shapes_folder / "square").iterdir())))
    ) as im:
        assert im.size == (32, 32) and im.mode == "RGB"
    # The written files hold exactly the generated images.
    x, y = shapes.generate(48, seed=1)
    first = np.asarray(Image.open(shapes_folder / shapes.CLASSES[y[0]] / "000000.png")).transpose(
        2, 0, 1
    )
    assert np.array_equal(first, x[0])
    proc = zoo("data", "shapes", "--out", shapes_folder, "--num", "8", check=False)
    assert proc.returncode == 1 and "not empty" in proc.stderr and "Traceback" not in proc.stderr


def test_data_shapes_writes_the_size_asked_for(tmp_path, zoo):
    proc = zoo("data", "shapes", "--out", tmp_path / "big", "--num", "8", "--size", "48")
    assert "8 48x48 images" in proc.stdout
    written = sorted((tmp_path / "big").rglob("*.png"))
    assert len(written) == 8
    x, y = shapes.generate(8, seed=0, size=48)
    with Image.open(tmp_path / "big" / shapes.CLASSES[y[0]] / "000000.png") as im:
        assert im.size == (48, 48)
        assert np.array_equal(np.asarray(im).transpose(2, 0, 1), x[0])
    bad = zoo("data", "shapes", "--out", tmp_path / "tiny", "--size", "4", check=False)
    assert bad.returncode == 1 and "at least 8" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "tiny").exists()
    # Fewer images than classes would leave class folders empty, which no training reads.
    few = zoo("data", "shapes", "--out", tmp_path / "few", "--num", "5", check=False)
    assert few.returncode == 1 and "Traceback" not in few.stderr
    assert "at least 8, one per class, not 5" in few.stderr and not (tmp_path / "few").exists()


def test_a_corrupt_image_is_skipped_with_a_warning_or_stops_the_read(shapes_folder, capsys):
    classes, files, labels = image_data.scan_folder(shapes_folder)
    assert classes == sorted(shapes.CLASSES) and len(files) == 49
    x, y = image_data.read_images(files, labels, 16, 3, on_error="skip")
    assert x.shape == (48, 3, 16, 16) and len(y) == 48
    assert "broken.png" in capsys.readouterr().err
    with pytest.raises(ZooError, match="broken.png"):
        image_data.read_images(files, labels, 16, 3, on_error="error")


def test_a_16_bit_grey_png_keeps_its_tones(tmp_path):
    # A 16-bit PNG opens in Pillow as mode I;16, whose own conversion to 8 bits clips at 255:
    # everything above 1/257 of full scale would read as white.
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    eight = (ramp / 257).round().astype(np.uint8)
    Image.fromarray(eight).save(tmp_path / "plain.png")
    for channels in (1, 3):
        deep = image_data.read_image(tmp_path / "deep.png", 16, channels).astype(int)
        plain = image_data.read_image(tmp_path / "plain.png", 16, channels).astype(int)
        assert deep.shape == (channels, 16, 16)
        assert np.abs(deep - plain).max() <= 1
        assert deep.min() < 20 and deep.max() > 235  # dark to light, as saved


def test_the_image_formats_torchvision_reads_are_read(tmp_path):
    # ImageFolder's extensions, in any case; the pixels come through each lossless format.
    colour = (200, 40, 90)
    for ext in ("png", "BMP", "gif", "tif", "tiff", "ppm", "webp"):
        folder = tmp_path / ("grey" if ext == "ppm" else "red")
        folder.mkdir(exist_ok=True)
        options = {"lossless": True} if ext == "webp" else {}
        Image.new("RGB", (6, 6), colour).save(folder / f"a.{ext}", **options)
    Image.new("L", (6, 6), 128).save(tmp_path / "grey" / "b.pgm")
    # Hidden files and folders are not images of the class: macOS and Jupyter leave them.
    (tmp_path / "red" / "._a.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (tmp_path / "red" / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (6, 6), "blue").save(tmp_path / "red" / ".ipynb_checkpoints" / "a.png")
    classes, files, labels = image_data.scan_folder(tmp_path)
    assert classes == ["grey", "red"] and len(files) == 8
    x, _ = image_data.read_images(files, labels, 4, 3, on_error="error")
    red = x[np.asarray(labels) == 1]
    assert red.shape == (6, 3, 4, 4)
    # GIF keeps a palette of 256 colours, which may move a channel by a step or two.
    assert np.abs(red.astype(int) - np.array(colour)[None, :, None, None]).max() <= 4


def test_empty_class_folder_and_folders_without_images_are_clear_errors(tmp_path):
    with pytest.raises(ZooError, match="does not exist"):
        image_data.scan_folder(tmp_path / "missing")
    (tmp_path / "loose.png").write_bytes(b"")
    with pytest.raises(ZooError, match="no sub-folders"):
        image_data.scan_folder(tmp_path)
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    Image.new("RGB", (5, 7), "red").save(tmp_path / "cat" / "a.jpg")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(ZooError, match=r"dog.* holds no images \(png, jpg, jpeg, bmp"):
        image_data.scan_folder(tmp_path)
    # A class whose only file is unreadable ends up empty: also an error, naming the class.
    (tmp_path / "dog" / "b.png").write_bytes(b"garbage")
    task = ImageClassification()
    task.setup(str(tmp_path), None, 0)
    with pytest.raises(ZooError, match="dog"):
        task.bind(_config(num_classes=2))


def _two_tone_folder(root, layout):
    """Folders of 8x8 images, each black or white: {class: ["black", "white", ...]}."""
    for name, colours in layout.items():
        (root / name).mkdir(parents=True)
        for i, colour in enumerate(colours):
            Image.new("RGB", (8, 8), colour).save(root / name / f"{i}.png")
    return str(root)


def test_a_class_the_split_leaves_without_training_images_is_a_clear_error(tmp_path):
    # Two images, one per class: the held-out one's class would never be trained on.
    task = ImageClassification()
    task.setup(_two_tone_folder(tmp_path / "d", {"dark": ["black"], "light": ["white"]}), None, 0)
    with pytest.raises(ZooError, match=r"class\(es\) (dark|light) .*none is left to train on"):
        task.bind(_config(num_classes=2))
    # So with the embedded shapes, one image of each class: the advice is a larger num_images.
    task = ImageClassification(ImageOptions(num_images=8))
    task.setup(None, None, 0)
    with pytest.raises(ZooError, match=r"embedded shapes data \(num_images=8\).*larger num_images"):
        task.bind(_config())


class _Brightness(nn.Module):
    """Predicts 'dark' or 'light' from mean brightness: a known, exact classifier."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-m, m], dim=1) * self.scale


def test_metrics_and_confusion_matrix_are_exact(tmp_path):
    train = _two_tone_folder(tmp_path / "train", {"dark": ["black"] * 2, "light": ["white"] * 2})
    val = _two_tone_folder(
        tmp_path / "val", {"dark": ["black"] * 3 + ["white"], "light": ["white"] * 3}
    )
    task = ImageClassification()
    task.setup(train, val, 0)
    task.bind(_config(image_size=8, num_classes=2))
    metrics = task.evaluate(_Brightness(), batch_size=3)
    assert metrics["val_accuracy"] == pytest.approx(6 / 7)
    assert metrics["val_acc_dark"] == pytest.approx(3 / 4) and metrics["val_acc_light"] == 1.0
    assert "val_top5" not in metrics  # two classes only
    assert task.confusion == [[3, 1], [0, 3]]
    task.save_extras(tmp_path)
    with Image.open(tmp_path / "confusion.png") as im:
        assert im.width > 60 and im.height > 60


def test_normalisation_split_and_augmentation_are_seeded(shapes_folder):
    def bound(seed, **options):
        task = ImageClassification(ImageOptions(val_fraction=0.25, **options))
        task.setup(str(shapes_folder), None, seed)
        task.bind(_config())
        return task

    task = bound(0)
    assert len(task.train_y) + len(task.val_y) == 48 and len(task.val_y) == 12
    # Statistics come from the training split: normalised training pixels have mean 0, std 1.
    x = task.normalise(task.train_x)
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    state = json.loads(json.dumps(task.state()))
    assert state["classes"] == sorted(shapes.CLASSES) and len(state["mean"]) == 3
    same, other = bound(0), bound(1)
    assert torch.equal(same.val_x, task.val_x) and not torch.equal(other.val_x, task.val_x)

    a = task.train_batch(16, torch.Generator().manual_seed(5))
    b = task.train_batch(16, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and a[0].shape == (16, 3, 32, 32)
    plain = bound(0, pad=0, flip=False)
    g = torch.Generator().manual_seed(5)
    x, y = plain.train_batch(16, g)
    idx = torch.randint(len(plain.train_y), (16,), generator=torch.Generator().manual_seed(5))
    assert torch.equal(x, plain.normalise(plain.train_x[idx])) and torch.equal(
        y, plain.train_y[idx]
    )
    assert not torch.equal(a[0], x)  # augmentation changed the images


def test_grey_models_read_one_channel(shapes_folder):
    task = ImageClassification()
    task.setup(str(shapes_folder), None, 0)
    task.bind(_config(image_size=16, in_channels=1))
    assert task.train_x.shape[1:] == (1, 16, 16) and len(task.mean) == 1


def test_train_eval_and_predict_through_the_cli(shapes_folder, tmp_path, zoo):
    run = tmp_path / "run"
    proc = zoo(
        "train", "resnet", "--data", shapes_folder, "--steps", "3", "--out", run, *TINY_RESNET
    )
    assert "broken.png" in proc.stderr  # skipped with a warning naming it
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "image-classification"
    assert config["task_state"]["classes"] == sorted(shapes.CLASSES)
    assert config["model_config"]["num_classes"] == 8
    assert {"val_accuracy", "val_loss", "val_top5"} <= set(config["metrics"])
    per_class = {k[len("val_acc_") :] for k in config["metrics"] if k.startswith("val_acc_")}
    assert per_class and per_class <= set(shapes.CLASSES)
    with Image.open(run / "confusion.png") as im:
        assert im.format == "PNG"
    assert "](confusion.png)" in (run / "README.md").read_text()  # the card shows it
    evaluated = json.loads(zoo("eval", run, "--json").stdout)
    assert evaluated["val_accuracy"] == pytest.approx(config["metrics"]["val_accuracy"])

    images = [
        shapes_folder / "star" / sorted(p.name for p in (shapes_folder / "star").iterdir())[0],
        shapes_folder / "ring" / sorted(p.name for p in (shapes_folder / "ring").iterdir())[0],
    ]
    results = json.loads(zoo("predict", run, *images, "--top-k", "20", "--json").stdout)
    assert [r["image"] for r in results] == [str(p) for p in images]
    for result in results:
        probs = [p["probability"] for p in result["predictions"]]
        assert len(probs) == 8  # top-k beyond the number of classes shows them all
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert probs == sorted(probs, reverse=True)
        assert sorted(p["class"] for p in result["predictions"]) == sorted(shapes.CLASSES)
    # Text output: one line per image, the k likeliest classes in order.
    lines = zoo("predict", run, *images, "--top-k", "2").stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{images[0]}: ")
    for line, result in zip(lines, results, strict=True):
        named = [part.split()[0] for part in line.split(": ", 1)[1].split(", ")]
        assert named == [p["class"] for p in result["predictions"][:2]]

    bad = zoo("predict", run, shapes_folder / "circle" / "broken.png", check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "broken.png" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

    # In a folder, an unreadable image is named, the others are still classified, and the
    # command fails so that a script notices.
    circles = zoo("predict", run, shapes_folder / "circle", "--top-k", "1", check=False)
    readable = sorted(p for p in (shapes_folder / "circle").iterdir() if p.name != "broken.png")
    assert circles.returncode == 1 and "Traceback" not in circles.stderr
    assert [line.split(": ")[0] for line in circles.stdout.splitlines()] == [
        str(p) for p in readable
    ]
    warning, error = circles.stderr.strip().splitlines()
    assert "broken.png" in warning and f"1 of {len(readable) + 1} images could not be" in error
    listed = json.loads(zoo("predict", run, shapes_folder / "circle", "--json", check=False).stdout)
    assert [r["image"] for r in listed] == [
        str(p) for p in sorted((shapes_folder / "circle").iterdir())
    ]
    assert [("error" in r, "predictions" in r) for r in listed].count((True, False)) == 1
    assert "cannot read image" in next(r["error"] for r in listed if "error" in r)

    # A folder stands for the images under it, in sorted order, beside files named directly.
    stars = sorted((shapes_folder / "star").iterdir())
    folder = json.loads(zoo("predict", run, shapes_folder / "star", images[1], "--json").stdout)
    assert [r["image"] for r in folder] == [str(p) for p in stars] + [str(images[1])]
    first, alone = folder[0]["predictions"], results[0]["predictions"][:5]
    assert [p["class"] for p in first] == [p["class"] for p in alone]
    assert [p["probability"] for p in first] == pytest.approx([p["probability"] for p in alone])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    empty = zoo("predict", run, tmp_path / "empty", check=False)
    assert empty.returncode == 1 and "Traceback" not in empty.stderr
    assert "holds no images" in empty.stderr and len(empty.stderr.strip().splitlines()) == 1
    texts = zoo("predict", run, "-", check=False, input="a text\n")
    assert texts.returncode == 1 and "is for text classifiers" in texts.stderr

    # From Python: one image alone, or images already opened with Pillow, as a pipeline takes.
    artifact = zoo_core.load(run)
    alone = artifact.predict(images[0], top_k=20)
    assert [r["image"] for r in alone] == [str(images[0])]
    with Image.open(images[0]) as opened:
        pillow = artifact.predict([opened, opened.copy()], top_k=20)
    assert pillow[0]["image"] == str(images[0]) and pillow[1]["image"] == "<Image 32x32>"
    for result in (alone[0], *pillow):
        assert [p["class"] for p in result["predictions"]] == [
            p["class"] for p in results[0]["predictions"]
        ]
        assert [p["probability"] for p in result["predictions"]] == pytest.approx(
            [p["probability"] for p in results[0]["predictions"]], abs=1e-6
        )
    with pytest.raises(ZooError, match="cannot classify 'int' objects"):
        artifact.predict(7)
    # From Python an unreadable image raises, unless asked to report it in its place.
    with pytest.raises(ZooError, match="broken.png"):
        artifact.predict(shapes_folder / "circle")
    reported = artifact.predict(shapes_folder / "circle", top_k=1, on_error="report")
    assert [r["image"] for r in reported] == [r["image"] for r in listed]
    for got, printed in zip(reported, listed, strict=True):
        assert got.keys() == printed.keys()
    with pytest.raises(ZooError, match="on_error must be"):
        artifact.predict(images[0], on_error="skip")


def test_bad_images_error_stops_before_writing_a_run(shapes_folder, tmp_path, zoo):
    run = tmp_path / "run"
    proc = zoo(
        "train",
        "resnet",
        "--data",
        shapes_folder,
        "--steps",
        "1",
        "--out",
        run,
        "--set",
        "bad_images=error",
        *TINY_RESNET,
        check=False,
    )
    assert proc.returncode == 1 and "broken.png" in proc.stderr and "Traceback" not in proc.stderr
    assert not run.exists()
