"""Images decoded as training reads them, in worker processes (ImageOptions.workers)."""

import numpy as np
import pytest
import torch
from PIL import Image

from zoo_core.errors import ZooError
from zoo_core.tasks.image import ImageClassification, ImageOptions


class Config:
    image_size, in_channels, num_classes = 12, 3, 3


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for k, name in enumerate(["circle", "square", "star"]):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(14):
            pixels = rng.integers(0, 256, (10 + k, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    return tmp_path / "data"


def _task(folder, workers):
    task = ImageClassification(ImageOptions(workers=workers))
    task.setup(str(folder), seed=3)
    task.bind(Config())
    return task


def test_lazy_images_give_the_batches_of_images_in_memory(folder):
    eager, lazy = _task(folder, 0), _task(folder, 2)
    assert isinstance(eager.train_x, torch.Tensor) and not isinstance(lazy.train_x, torch.Tensor)
    assert eager.mean == lazy.mean and eager.std == lazy.std
    assert torch.equal(eager.val_x, lazy.val_x[:]) and torch.equal(eager.val_y, lazy.val_y)
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for _ in range(4):
        (xa, ya), (xb, yb) = eager.train_batch(8, a), lazy.train_batch(8, b)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert eager.evaluate.__func__ is lazy.evaluate.__func__
    lazy.train_x.close()


def test_prefetching_leaves_the_generator_as_it_was(folder):
    """A resumed run restores the generator and starts with nothing prefetched: its batches are
    those of the run that went on."""
    straight = _task(folder, 2)
    generator = torch.Generator().manual_seed(9)
    for _ in range(2):
        straight.train_batch(6, generator)
    saved = generator.get_state()
    expected = [straight.train_batch(6, generator) for _ in range(3)]
    resumed = _task(folder, 2)
    again = torch.Generator().set_state(saved)
    for x, y in expected:
        rx, ry = resumed.train_batch(6, again)
        assert torch.equal(rx, x) and torch.equal(ry, y)
    # Another batch size than the one prefetched: the rows asked for are decoded then.
    other = resumed.train_batch(3, again)
    assert other[0].shape == (3, 3, 12, 12)
    straight.train_x.close()
    resumed.train_x.close()


def test_an_unreadable_image_is_named_when_it_is_read(folder):
    (folder / "star" / "0.png").write_bytes(b"not a png")
    task = ImageClassification(ImageOptions(workers=1, bad_images="error"))
    task.setup(str(folder))
    with pytest.raises(ZooError, match=r"cannot read image '.*star/0.png'"):
        task.bind(Config())
    with pytest.raises(ZooError, match="workers must be 0 or more"):
        _task(folder, -1)


def test_eval_of_a_run_reads_its_validation_images_lazily_with_the_same_results(folder, tmp_path):
    """`zoo eval RUN` on a run whose images were decoded as read: its validation images are
    too, and the metrics are those of the images all in memory."""
    import zoo_core
    from zoo_core.data.images import LazyImages

    overrides = {"width": 4, "image_size": 12, "workers": 1, "log_interval": 2}
    run = zoo_core.train(
        "resnet", data=folder, out=tmp_path / "run", overrides=overrides, steps=2, batch_size=4,
        progress=False, seed=3,
    )[0]  # fmt: skip
    for data in (None, str(folder)):  # its held-out images; another folder (here: all of them)
        lazy = zoo_core.load(run.path)
        lazy_metrics = lazy.evaluate(data)
        assert isinstance(lazy.task.val_x, LazyImages)
        eager = zoo_core.load(run.path)
        eager.task.options.workers = 0  # what eval did before: every image decoded first
        eager_metrics = eager.evaluate(data)
        assert isinstance(eager.task.val_x, torch.Tensor)
        assert lazy_metrics == eager_metrics
        assert torch.equal(lazy.task.val_x[:], eager.task.val_x)
        assert torch.equal(lazy.task.val_y, eager.task.val_y)
        lazy.task.val_x.close()
