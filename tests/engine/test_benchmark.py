"""The training-speed comparison reads per-iteration ips from both trainers' logs alike."""

from __future__ import annotations

import pytest

from ppcls.engine.benchmark import logged_ips, median_ips

OURS = ("[2026/11/29 22:02:12] ppcls.engine.trainer INFO: [Train][Epoch 1/2][Iter: 10/35]lr(Cosine): 0.00571, "
        "CELoss: 0.65878, loss: 0.65878, top1: 0.62500, batch_cost: 0.49546s, reader_cost: 0.00527s, "
        "ips: 8.1 samples/s, eta: 0:02:48\n"
        "[2026/11/29 22:02:24] ppcls.engine.trainer INFO: [Train][Epoch 1/2][Avg]CELoss: 0.81970, loss: 0.81970, "
        "top1: 0.63571, batch_cost: 0.48068s, reader_cost: 0.00233s, ips: 8.32 samples/s, time: 16.9s\n")
# PaddleClas 2.6's line (ppcls/engine/train/utils.py: log_info)
THEIRS = ("[2026/11/29 22:30:01] ppcls INFO: [Train][Epoch 1/2][Iter: 3/16]lr(Cosine): 0.00078, top1: 0.50000, "
          "CELoss: 0.71234, loss: 0.71234, batch_cost: 1.23456s, reader_cost: 0.01234, ips: 12.96000 samples/s, "
          "eta: 0:00:40\n")


def test_iteration_lines_of_both_trainers_are_read_and_epoch_averages_are_not():
    assert logged_ips(OURS) == [8.1]
    assert logged_ips(THEIRS) == [12.96]


def test_median_skips_the_start_up_iterations():
    assert median_ips([1.0, 1.0, 1.0, 1.0, 1.0, 9.0, 10.0, 11.0], skip=5) == 10.0
    with pytest.raises(ValueError, match="none left after skipping the first 5"):
        median_ips([1.0, 2.0], skip=5)
