"""Losses; importing registers them in ``LOSSES``."""

from .combined import CombinedLoss, build_loss
from .cross_entropy import CELoss, MixCELoss

__all__ = ["CELoss", "CombinedLoss", "MixCELoss", "build_loss"]
