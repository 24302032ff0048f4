"""Training, evaluation, inference and export entry points (used by ``tools/``)."""
