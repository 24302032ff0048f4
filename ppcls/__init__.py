"""ppcls: a PaddlePaddle image-classification framework for lightweight backbones."""

__version__ = "0.1.0"
