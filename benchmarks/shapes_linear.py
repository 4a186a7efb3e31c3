"""A linear baseline on the default image data: how hard the shapes are without convolutions.

Multinomial logistic regression on the normalised pixels (3 x 32 x 32 features), trained to
convergence with L-BFGS on the same training split `zoo train resnet` uses (same generated images,
same seeded split, same normalisation), scored on the same validation split.

    python benchmarks/shapes_linear.py            # prints train and validation accuracy
    python benchmarks/shapes_linear.py --l2 1e-4         # weaker regularisation
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from zoo_core.tasks.image import ImageClassification


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--l2", type=float, default=1e-2, help="L2 penalty on the weights")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="the split's seed (zoo train --seed)")
    args = parser.parse_args()

    start = time.perf_counter()
    task = ImageClassification()
    task.setup(None, None, args.seed)
    task.bind(SimpleNamespace(image_size=32, in_channels=3, num_classes=len(task.classes)))
    x = task._normalise(task.train_x).flatten(1)  # (N, 3072)
    y = task.train_y
    xv = task._normalise(task.val_x).flatten(1)
    yv = task.val_y

    torch.manual_seed(0)
    linear = torch.nn.Linear(x.shape[1], len(task.classes))
    opt = torch.optim.LBFGS(
        linear.parameters(),
        lr=1,
        max_iter=args.iterations,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(linear(x), y) + args.l2 * linear.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        train_acc = (linear(x).argmax(1) == y).float().mean().item()
        val_acc = (linear(xv).argmax(1) == yv).float().mean().item()
    print(
        f"linear baseline on {task.describe_data()}: train accuracy {train_acc:.3f}, "
        f"validation accuracy {val_acc:.3f} ({len(yv)} images, chance {1 / len(task.classes):.3f}); "
        f"{time.perf_counter() - start:.0f}s"
    )


if __name__ == "__main__":
    main()
