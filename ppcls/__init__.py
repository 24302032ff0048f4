"""ppcls: a PaddlePaddle image-classification framework for lightweight backbones."""

import warnings

# Paddle warns on import that ccache (a C++ build cache for custom operators) is missing; nothing
# here compiles operators, so the warning is noise in every tool's output
warnings.filterwarnings("ignore", message="No ccache found")

__version__ = "0.1.0"
