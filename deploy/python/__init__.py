"""The deploy predictor: preprocessing, Paddle Inference / ONNX Runtime backends, post-processing."""
