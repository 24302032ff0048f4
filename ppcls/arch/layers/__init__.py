"""Shared building blocks; a block is defined once in the whole project."""

from .activation import act_names, get_act
from .conv_bn import ConvBNAct
from .helpers import make_divisible
from .reparam import fuse_conv_bn, reparameterize_model
from .se import SqueezeExcite
from .shuffle import channel_shuffle, interleave

__all__ = [
    "ConvBNAct",
    "SqueezeExcite",
    "act_names",
    "channel_shuffle",
    "fuse_conv_bn",
    "get_act",
    "interleave",
    "make_divisible",
    "reparameterize_model",
]
