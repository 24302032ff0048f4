"""Custom CPU operators (compiled on first use) with Paddle's own kernels as the fallback."""

from .depthwise_conv import DepthwiseConv2D, depthwise_conv2d

__all__ = ["DepthwiseConv2D", "depthwise_conv2d"]
