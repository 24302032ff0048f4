"""Optimizers and learning-rate schedules; importing registers them."""

from .lr import build_lr
from .optimizer import build_optimizer, split_decay_groups

__all__ = ["build_lr", "build_optimizer", "split_decay_groups"]
