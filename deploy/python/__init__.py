"""The deploy predictor: preprocessing, Paddle Inference / ONNX Runtime backends, post-processing."""

import warnings

# Paddle warns on import that ccache (a C++ build cache for custom operators) is missing; nothing
# here compiles operators, so the warning is noise in every tool's output
warnings.filterwarnings("ignore", message="No ccache found")
