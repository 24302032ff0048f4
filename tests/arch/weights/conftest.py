"""The format tests compare our model with the publishers' code on converted weights: both run Paddle's own
depthwise kernel here, so a difference can only come from the conversion (the fast CPU kernel's rounding is
tested against Paddle's in tests/ops, and the whole models in tests/arch/test_fast_depthwise.py)."""

import pytest


@pytest.fixture(autouse=True)
def paddle_depthwise_kernel(monkeypatch):
    monkeypatch.setenv("PPCLS_DEPTHWISE", "paddle")
