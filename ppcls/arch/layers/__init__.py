"""Shared building blocks; a block is defined once in the whole project."""

from .activation import act_names, get_act
from .conv_bn import ConvBNAct
from .helpers import make_divisible
from .reparam import fuse_conv_bn, reparameterize_model
from .se import SqueezeExcite

__all__ = [
    "ConvBNAct",
    "SqueezeExcite",
    "act_names",
    "fuse_conv_bn",
    "get_act",
    "make_divisible",
    "reparameterize_model",
]
