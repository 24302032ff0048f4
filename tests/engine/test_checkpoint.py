"""Atomic checkpoint sets: an interrupted save never leaves a broken or mixed set."""

from __future__ import annotations

import os

import numpy as np
import paddle
import pytest

from ppcls.engine.checkpoint import Checkpointer, load_checkpoint, recover, save_checkpoint


def state(v):
    return {"w": paddle.full([2], float(v))}


def test_roundtrip(tmp_path):
    prefix = str(tmp_path / "latest")
    save_checkpoint(prefix, state(1), {"m": paddle.ones([1])}, {"epoch": 3})
    c = load_checkpoint(prefix + ".pdparams")
    assert float(c.weights["w"][0]) == 1 and c.states == {"epoch": 3} and c.optimizer is not None
    assert c.verified and c.ema is None
    assert sorted(os.listdir(tmp_path)) == ["latest.pdopt", "latest.pdparams", "latest.pdstates"]
    # PaddleClas-compatible files: paddle.load reads each one directly
    assert float(paddle.load(prefix + ".pdparams")["w"][0]) == 1
    assert paddle.load(prefix + ".pdstates")["epoch"] == 3


def test_stray_temporaries_are_left_by_readers_and_removed_by_the_writer(tmp_path):
    prefix = str(tmp_path / "latest")
    save_checkpoint(prefix, state(1), state(1), {"epoch": 1})
    # temporary files of killed saves (of this protocol and of the earlier one); a truncated
    # .pdstates.tmp used to be taken for a complete set
    open(tmp_path / ".latest.pdparams.0123456789abcdef.tmp", "wb").write(b"half")
    open(prefix + ".pdstates.tmp", "wb").write(b"half")
    c = load_checkpoint(prefix)
    assert float(c.weights["w"][0]) == 1 and c.states["epoch"] == 1
    assert len([f for f in os.listdir(tmp_path) if f.endswith(".tmp")]) == 2  # a reader changes nothing
    Checkpointer(str(tmp_path))  # the writer, at the start of a run
    assert sorted(os.listdir(tmp_path)) == ["latest.pdopt", "latest.pdparams", "latest.pdstates"]
    assert load_checkpoint(prefix).states["epoch"] == 1


def test_missing_checkpoint_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(str(tmp_path / "nothing"))


def test_recover_is_harmless_without_temporaries(tmp_path):
    recover(str(tmp_path / "x"))
    assert os.listdir(tmp_path) == []


def test_pretrained_reinitialises_mismatched_head(tmp_path, caplog):
    from ppcls.arch import build_model

    src = build_model({"name": "PPLCNet_x0_25", "class_num": 10})
    paddle.save(src.state_dict(), str(tmp_path / "w.pdparams"))
    with caplog.at_level("INFO"):
        dst = build_model({"name": "PPLCNet_x0_25", "class_num": 4}, weights=str(tmp_path / "w"))
    assert "fc.weight keeps its fresh initialisation" in caplog.text
    assert "loaded 144/146 tensors" in caplog.text
    np.testing.assert_array_equal(dst.conv1.conv.weight.numpy(), src.conv1.conv.weight.numpy())
