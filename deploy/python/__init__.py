"""The deploy predictor: preprocessing, Paddle Inference / ONNX Runtime backends, post-processing.

Nothing here imports ``ppcls``, so ``deploy/`` runs when copied alone to a server; ppcls imports the
pure modules (``errors``, ``config_syntax``, ``files``, ``postprocess``, ``preprocess``) instead of
keeping copies of them, see the note at the top of each.

Scripts (``predict_cls.py``, ``quantize.py``) start with the same three lines when run by path
(``python deploy/python/predict_cls.py``, from the repository or from a copy of ``deploy/`` alone):
the folder holding ``deploy/`` goes first on ``sys.path``, so ``deploy.python`` imports work, and
the script's own folder comes off it, so its generic module names (``errors``, ``utils``, ``files``)
cannot shadow other top-level modules. Imported as a module (``deploy.python.predict_cls``, by the
tests and by ``tools/quantize.py``), ``__package__`` is set and the lines do nothing.
"""

import warnings

# Paddle warns on import that ccache (a C++ build cache for custom operators) is missing; nothing
# here compiles operators, so the warning is noise in every tool's output
warnings.filterwarnings("ignore", message="No ccache found")
