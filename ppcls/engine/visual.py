"""Seeing a run: VisualDL scalars, training curves, confusion matrix and per-class accuracy.

Everything here is a collaborator of the trainer (callbacks that ``ppcls/engine/runner.py``
builds on rank 0 from plain arguments) or of ``tools/eval.py`` (``evaluate_with_plots``); nothing
here reads the config. The plots use matplotlib's Agg canvas directly, so no display and no global
pyplot state are involved. Files are written atomically.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import paddle

from ppcls.data.label_list import read_label_list
from ppcls.metric.confusion import ConfusionMatrix, per_class_accuracy
from ppcls.utils import dist
from ppcls.utils.errors import DataError, DependencyError
from ppcls.utils.io import atomic_path
from ppcls.utils.progress import progress

from .callbacks import Callback
from .evaluate import decoded_rows, evaluate

logger = logging.getLogger(__name__)

CURVES_FILE = "train_curves.png"
CONFUSION_FILE = "confusion_matrix.png"
PER_CLASS_FILE = "per_class_accuracy.csv"

# above these class counts the matrix stays readable only without tick labels / cell counts
_MAX_TICK_LABELS = 40
_MAX_CELL_COUNTS = 20


# ---------------------------------------------------------------------------- class names


def resolve_class_names(
    num_classes: int, dataset: Any = None, class_id_map_file: str | None = None
) -> list[str]:
    """Names of classes ``0..num_classes-1``: the dataset's ``class_names``, else the label list, else ids."""
    names: Sequence[str] | Mapping[int, str] | None = getattr(dataset, "class_names", None)
    if not names and class_id_map_file:
        names = read_label_list(str(class_id_map_file))
    if not names:
        return [str(i) for i in range(num_classes)]
    if isinstance(names, Mapping):
        return [str(names.get(i, i)) for i in range(num_classes)]
    return [str(names[i]) if i < len(names) else str(i) for i in range(num_classes)]


# ---------------------------------------------------------------------------- files


def _save_figure(fig: Any, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def write_per_class_csv(path: str, matrix: np.ndarray, class_names: Sequence[str]) -> None:
    """``class_id, class_name, samples, correct, accuracy`` (accuracy empty for a class without samples)."""
    samples, correct, accuracy = per_class_accuracy(matrix)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["class_id", "class_name", "samples", "correct", "accuracy"])
            for i in range(matrix.shape[0]):
                acc = "" if math.isnan(accuracy[i]) else f"{accuracy[i]:.6f}"
                writer.writerow([i, class_names[i], int(samples[i]), int(correct[i]), acc])


def plot_confusion_matrix(path: str, matrix: np.ndarray, class_names: Sequence[str]) -> None:
    """Rows true, columns predicted; colour = share of the true class, counts printed for few classes."""
    from matplotlib.figure import Figure

    n = matrix.shape[0]
    rows = matrix.sum(axis=1, keepdims=True)
    share = matrix / np.maximum(rows, 1)
    side = min(max(4.5, 0.32 * n + 3.0), 24.0)
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if n <= _MAX_TICK_LABELS:
        labels = [name if len(name) <= 24 else name[:23] + "…" for name in class_names]
        ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(n), labels, fontsize=8)
    if n <= _MAX_CELL_COUNTS:
        for t in range(n):
            for p in range(n):
                if matrix[t, p]:
                    ax.text(p, t, str(int(matrix[t, p])), ha="center", va="center", fontsize=8,
                            color="white" if share[t, p] > 0.5 else "black")
    total = int(matrix.sum())
    correct = int(np.trace(matrix))
    ax.set_title(f"Confusion matrix: {correct}/{total} correct ({correct / max(total, 1):.2%})")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.tight_layout()
    _save_figure(fig, path)


def write_confusion_outputs(folder: str, matrix: np.ndarray, class_names: Sequence[str]) -> None:
    """``confusion_matrix.png`` and ``per_class_accuracy.csv`` in ``folder``."""
    if len(class_names) != matrix.shape[0]:
        raise DataError(f"{len(class_names)} class names for a {matrix.shape[0]}-class confusion matrix")
    plot_confusion_matrix(os.path.join(folder, CONFUSION_FILE), matrix, class_names)
    write_per_class_csv(os.path.join(folder, PER_CLASS_FILE), matrix, class_names)
    logger.info("confusion matrix and per-class accuracy written to %s", folder)


def _series(history: Sequence[Mapping[str, Any]], split: str, key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for item in history:
        values = item.get(split) or {}
        if key in values:
            xs.append(int(item["epoch"]))
            ys.append(float(values[key]))
    return xs, ys


def plot_training_curves(path: str, history: Sequence[Mapping[str, Any]]) -> None:
    """Loss and top-1 per epoch, train and eval (EMA eval too when recorded)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4.2))
    panels = (("loss", "loss"), ("top1", "top-1 accuracy"))
    for i, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        drawn = 0
        for split, label, style in (("train", "train", "-o"), ("eval", "eval", "-s")):
            xs, ys = _series(history, split, key)
            if xs:
                ax.plot(xs, ys, style, markersize=3, label=label)
                drawn += 1
        xs, ys = _series(history, "eval", f"ema_{key}")
        if xs:
            ax.plot(xs, ys, "--^", markersize=3, label="eval (EMA)")
            drawn += 1
        if drawn:
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {key} recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _save_figure(fig, path)


# ---------------------------------------------------------------------------- evaluation passes


class _Ticking:
    """A loader that advances a progress bar after each batch."""

    def __init__(self, loader: Any, bar: Any) -> None:
        self.loader = loader
        self.bar = bar

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        for batch in self.loader:
            yield batch
            self.bar.update(1)


def evaluate_with_plots(
    model: paddle.nn.Layer,
    loader: Any,
    loss: Any | None,
    metrics: Sequence[Any],
    folder: str,
    print_batch_step: int,
    class_names: Sequence[str] | None = None,
    max_bad_image_ratio: float = 0.01,
) -> dict[str, float]:
    """:func:`~ppcls.engine.evaluate.evaluate`, also writing the confusion matrix and per-class accuracy.

    Class names default to the eval dataset's ``class_names``, else the class ids.
    """
    confusion = ConfusionMatrix()
    with progress(len(loader), "eval", "batch") as bar:
        paths = getattr(loader.dataset, "paths", None)
        results = evaluate(model, _Ticking(loader, bar), loss, [*metrics, confusion], 0, print_batch_step,
                           max_bad_image_ratio=max_bad_image_ratio,
                           bad_image_paths=(lambda idx: [paths[int(i)] for i in idx]) if paths is not None else None)
    matrix = confusion.matrix
    if dist.is_main() and matrix is not None:
        names = list(class_names) if class_names else resolve_class_names(matrix.shape[0], loader.dataset)
        write_confusion_outputs(folder, matrix, names)
    return results


def _whole_set_loader(loader: Any) -> Any:
    """``loader`` in one process; with several ranks a loader over the whole set (rank 0 runs alone)."""
    if dist.world_size() == 1:
        return loader
    batch_size = getattr(loader.batch_sampler, "batch_size", None) or 64
    return paddle.io.DataLoader(
        loader.dataset,
        batch_sampler=paddle.io.BatchSampler(loader.dataset, batch_size=batch_size, shuffle=False),
        num_workers=loader.num_workers,
        use_shared_memory=loader.use_shared_memory,
        collate_fn=loader.collate_fn,
        return_list=True,
    )


@paddle.no_grad()
def confusion_on(model: paddle.nn.Layer, loader: Any, num_classes: int | None = None) -> np.ndarray:
    """Confusion matrix of ``model`` over ``loader`` in this process alone (no collective calls).

    A sample that stands in for an undecodable image (``bad_index >= 0``) carries another image's label
    and is left out, as in :func:`~ppcls.engine.evaluate.evaluate`.
    """
    confusion = ConfusionMatrix(num_classes, all_ranks=False)
    was_training = model.training
    model.eval()
    left_out = 0
    try:
        with progress(len(loader), "confusion matrix", "batch") as bar:
            for images, labels, bad in loader:
                logits, labels, replaced = decoded_rows(model(images), labels, bad)
                left_out += int(replaced.size)
                if labels.shape[0]:
                    confusion.update(logits, labels)
                bar.update(1)
    finally:
        if was_training:
            model.train()
    if left_out:
        logger.info("confusion matrix: %d undecodable image(s) left out", left_out)
    confusion.compute()
    return confusion.matrix


# ---------------------------------------------------------------------------- callbacks


class VisualDLCallback(Callback):
    """Scalars for ``visualdl --logdir``: ``Train/*`` per log step, ``TrainEpoch/*``, ``Eval/*`` per epoch."""

    def __init__(self, logdir: str) -> None:
        try:
            from visualdl import LogWriter
        except ImportError as e:
            raise DependencyError(
                f"Global.use_visualdl=True needs the visualdl package (pip install visualdl): {e}"
            ) from e
        os.makedirs(logdir, exist_ok=True)
        self.logdir = logdir
        self.writer = LogWriter(logdir=logdir)

    def _add(self, prefix: str, step: int, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(tag=f"{prefix}/{key}", step=int(step), value=float(value))

    def on_train_log(self, step: int, values: dict[str, float]) -> None:
        self._add("Train", step, values)

    def on_epoch_end(self, epoch: int, train: dict[str, float], evaluation: dict[str, float] | None) -> None:
        self._add("TrainEpoch", epoch, train)
        if evaluation:
            self._add("Eval", epoch, evaluation)
        self.writer.flush()  # a crash later in the run keeps the epochs so far

    def on_train_end(self, history: list[dict[str, Any]]) -> None:
        self.writer.close()


class PlotCallback(Callback):
    """At the end of training: ``train_curves.png``; with an eval loader, the confusion matrix and CSV.

    The confusion pass runs ``model`` (the plain, unwrapped network, whose weights are then the
    final ones) over ``eval_loader``; ``class_names`` default to the class ids.
    """

    def __init__(self, folder: str, *, eval_loader: Any = None, model: paddle.nn.Layer | None = None,
                 class_names: Sequence[str] | None = None, num_classes: int | None = None) -> None:
        if eval_loader is not None and model is None:
            raise ValueError("PlotCallback: the confusion matrix over eval_loader needs the model to run")
        self.folder = folder
        self.eval_loader = eval_loader
        self.model = model
        self.class_names = list(class_names) if class_names else None
        self.num_classes = num_classes

    def on_train_end(self, history: list[dict[str, Any]]) -> None:
        if history:
            plot_training_curves(os.path.join(self.folder, CURVES_FILE), history)
            logger.info("training curves written to %s", os.path.join(self.folder, CURVES_FILE))
        else:
            logger.warning("no epoch in the training history: %s not written", CURVES_FILE)
        if self.eval_loader is None:
            return
        matrix = confusion_on(self.model, _whole_set_loader(self.eval_loader), self.num_classes)
        names = self.class_names or resolve_class_names(matrix.shape[0])
        write_confusion_outputs(self.folder, matrix, names)
