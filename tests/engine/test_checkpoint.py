"""Atomic checkpoint sets: an interrupted save never leaves a broken or mixed set."""

from __future__ import annotations

import os

import numpy as np
import paddle
import pytest

from ppcls.engine.checkpoint import load_checkpoint, recover, save_checkpoint


def state(v):
    return {"w": paddle.full([2], float(v))}


def test_roundtrip(tmp_path):
    prefix = str(tmp_path / "latest")
    save_checkpoint(prefix, state(1), {"m": paddle.ones([1])}, {"epoch": 3})
    w, opt, st = load_checkpoint(prefix + ".pdparams")
    assert float(w["w"][0]) == 1 and st["epoch"] == 3 and opt is not None
    assert sorted(os.listdir(tmp_path)) == ["latest.pdopt", "latest.pdparams", "latest.pdstates"]


def test_kill_during_phase_one_keeps_previous_set(tmp_path):
    prefix = str(tmp_path / "latest")
    save_checkpoint(prefix, state(1), state(1), {"epoch": 1})
    # a killed save: only some temporary files, no .pdstates.tmp
    paddle.save(state(2), prefix + ".pdparams.tmp")
    open(prefix + ".pdopt.tmp", "wb").write(b"half")
    w, _, st = load_checkpoint(prefix)
    assert float(w["w"][0]) == 1 and st["epoch"] == 1
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_kill_during_renames_rolls_forward(tmp_path):
    prefix = str(tmp_path / "latest")
    save_checkpoint(prefix, state(1), state(1), {"epoch": 1})
    # phase 1 complete, .pdparams already renamed, the others pending
    paddle.save(state(2), prefix + ".pdparams")
    paddle.save(state(2), prefix + ".pdopt.tmp")
    paddle.save({"epoch": 2}, prefix + ".pdstates.tmp")
    w, opt, st = load_checkpoint(prefix)
    assert float(w["w"][0]) == 2 and float(opt["w"][0]) == 2 and st["epoch"] == 2


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
