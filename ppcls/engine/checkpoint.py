"""Checkpoints written so that a kill at any moment never leaves a broken set.

A checkpoint is ``{prefix}.pdparams`` (weights), ``{prefix}.pdopt`` (optimizer + LR state)
and ``{prefix}.pdstates`` (epoch and metrics). Saving first writes all three as ``*.tmp``
(``.pdstates.tmp`` last, fsynced), then renames them (``.pdstates`` last). A ``.pdstates.tmp``
on disk therefore means "complete, rename pending": :func:`recover` finishes the renames;
other stray ``.tmp`` files are an interrupted write and are removed, leaving the previous set.
"""

from __future__ import annotations

import glob
import logging
import os
from typing import Any

import paddle

from ppcls.arch.weights import META_KEY
from ppcls.utils.io import fsync_dir, fsync_file

logger = logging.getLogger(__name__)

EXTS = (".pdparams", ".pdopt", ".pdstates")
TMP = ".tmp"


def save_checkpoint(
    prefix: str, model_state: dict, opt_state: dict | None = None, states: dict | None = None
) -> None:
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    recover(prefix)
    parts = [(".pdparams", model_state), (".pdopt", opt_state), (".pdstates", dict(states or {}))]
    parts = [(ext, obj) for ext, obj in parts if obj is not None]
    for ext, obj in parts:  # phase 1: complete temporary files, .pdstates.tmp last
        tmp = prefix + ext + TMP
        paddle.save(obj, tmp)
        fsync_file(tmp)
    fsync_dir(folder)
    for ext, _ in parts:  # phase 2: renames, .pdstates last
        os.replace(prefix + ext + TMP, prefix + ext)
    fsync_dir(folder)


def recover(prefix: str) -> None:
    """Finish or discard an interrupted :func:`save_checkpoint` of ``prefix``."""
    if os.path.exists(prefix + ".pdstates" + TMP):
        for ext in EXTS:
            if os.path.exists(prefix + ext + TMP):
                os.replace(prefix + ext + TMP, prefix + ext)
        logger.warning("completed the interrupted save of checkpoint %s", prefix)
        return
    for ext in EXTS:
        if os.path.exists(prefix + ext + TMP):
            os.remove(prefix + ext + TMP)
            logger.warning("removed the partial file %s%s%s of an interrupted save", prefix, ext, TMP)


def recover_folder(folder: str) -> None:
    """Run :func:`recover` for every checkpoint prefix with temporary files in ``folder``."""
    prefixes = set()
    for path in glob.glob(os.path.join(glob.escape(folder), "*" + TMP)):
        base = path[: -len(TMP)]
        for ext in EXTS:
            if base.endswith(ext):
                prefixes.add(base[: -len(ext)])
    for prefix in sorted(prefixes):
        recover(prefix)


def strip_suffix(path: str) -> str:
    for ext in EXTS:
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def load_checkpoint(path: str) -> tuple[dict, dict | None, dict]:
    """(weights, optimizer state or None, states) of the checkpoint at ``path`` (any suffix)."""
    prefix = strip_suffix(path)
    recover(prefix)
    if not os.path.isfile(prefix + ".pdparams"):
        raise FileNotFoundError(
            f"Global.checkpoints: no checkpoint at {prefix} (expected {prefix}.pdparams, .pdopt, .pdstates)"
        )
    model_state = paddle.load(prefix + ".pdparams")
    model_state.pop(META_KEY, None)
    opt_state = paddle.load(prefix + ".pdopt") if os.path.isfile(prefix + ".pdopt") else None
    states = paddle.load(prefix + ".pdstates") if os.path.isfile(prefix + ".pdstates") else {}
    return model_state, opt_state, dict(states)


class Checkpointer:
    """Names and writes a run's checkpoints under ``folder`` (rank 0 only)."""

    def __init__(self, folder: str, enabled: bool = True) -> None:
        self.folder = folder
        self.enabled = enabled
        if enabled:
            os.makedirs(folder, exist_ok=True)
            recover_folder(folder)

    def save(self, name: str, model: paddle.nn.Layer, optimizer: Any | None, states: dict) -> str:
        prefix = os.path.join(self.folder, name)
        if self.enabled:
            save_checkpoint(prefix, weights_state(model), optimizer.state_dict() if optimizer else None, states)
            logger.info("saved checkpoint %s", prefix)
        return prefix


def weights_state(model: paddle.nn.Layer) -> dict:
    """``model``'s state dict, plus the model options its weights' publisher needed (if any).

    Fine-tuning from, say, torchvision's SqueezeNet builds the model with ``ceil_mode``; the
    option travels in the checkpoint so that evaluating or exporting it rebuilds the same
    network (see :mod:`ppcls.arch.weights.loader`).
    """
    state = model.state_dict()
    options = getattr(model, "publisher_options", None)
    if options:
        state = {**state, META_KEY: {"family": type(model).__name__, "arch_options": dict(options)}}
    return state
