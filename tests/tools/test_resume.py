"""Resuming: epochs 3-4 resumed from epoch 2 repeat a 4-epoch run's LR sequence and metrics."""

from __future__ import annotations

import os
import re

from tests.conftest import run_tool, tiny_config, write_config


def lr_by_epoch(log: str) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for epoch, lr in re.findall(r"\[Train\]\[Epoch (\d+)/\d+\]\[Iter: \d+/\d+\]lr\(Cosine\): ([\d.]+)", log):
        out.setdefault(int(epoch), []).append(float(lr))
    return out


def train_loss(log: str) -> dict[int, float]:
    return {int(e): float(v) for e, v in re.findall(r"\[Train\]\[Epoch (\d+)/\d+\]\[Avg\]CELoss: ([\d.]+)", log)}


def eval_top1(log: str) -> dict[int, float]:
    return {int(e): float(v) for e, v in re.findall(r"\[Eval\]\[Epoch (\d+)\]\[Avg\].*top1: ([\d.]+)", log)}


def test_two_plus_two_equals_four(tmp_path, digits_dir):
    full_dir, resumed_dir = str(tmp_path / "full"), str(tmp_path / "resumed")
    full = run_tool("train.py", "-c", write_config(tiny_config(digits_dir, full_dir, epochs=4), str(tmp_path / "f.yaml")))
    assert full.returncode == 0, full.stdout[-2000:]
    run = os.path.join(full_dir, "PPLCNet_x0_25")
    resumed = run_tool("train.py", "-c", write_config(tiny_config(digits_dir, resumed_dir, epochs=4), str(tmp_path / "r.yaml")),
                       "-o", f"Global.checkpoints={run}/epoch_2")
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    log_full = open(os.path.join(run, "train.log")).read()
    log_res = open(os.path.join(resumed_dir, "PPLCNet_x0_25", "train.log")).read()
    assert "continuing at epoch 3" in log_res
    lr_full, lr_res = lr_by_epoch(log_full), lr_by_epoch(log_res)
    assert sorted(lr_res) == [3, 4]
    assert lr_res[3] == lr_full[3] and lr_res[4] == lr_full[4]
    # random, np.random and paddle are reseeded from (seed, epoch) at each epoch: the resumed epochs
    # repeat the uninterrupted run's augmentation and dropout, so their numbers are the same
    loss_full, loss_res = train_loss(log_full), train_loss(log_res)
    assert sorted(loss_res) == [3, 4]
    assert loss_res[3] == loss_full[3] and loss_res[4] == loss_full[4]
    top_full, top_res = eval_top1(log_full), eval_top1(log_res)
    assert top_res[3] == top_full[3] and top_res[4] == top_full[4]


def eval_lines(log: str) -> dict[int, list[str]]:
    """Every ``[Eval][Epoch N][Avg]`` result per epoch, without its time: the model's, then the EMA's."""
    out: dict[int, list[str]] = {}
    for epoch, values in re.findall(r"\[Eval\]\[Epoch (\d+)\]\[Avg\](.*) \(\d+\.\d+s\)", log):
        out.setdefault(int(epoch), []).append(values)
    return out


def ema_config(digits_dir: str, out: str) -> dict:
    cfg = tiny_config(digits_dir, out, epochs=5)
    cfg["EMA"] = {"decay": 0.8}
    return cfg


def test_ema_resume_from_epoch_n_and_from_latest_after_a_kill_equals_uninterrupted(tmp_path, digits_dir):
    import signal
    import subprocess
    import sys
    import time

    import numpy as np
    import paddle

    from ppcls.arch.weights import META_KEY
    from tests.conftest import REPO

    full_dir = str(tmp_path / "full")
    full = run_tool("train.py", "-c", write_config(ema_config(digits_dir, full_dir), str(tmp_path / "f.yaml")))
    assert full.returncode == 0, full.stdout[-2000:]
    run = os.path.join(full_dir, "PPLCNet_x0_25")
    full_evals = eval_lines(full.stdout)
    assert all(len(full_evals[e]) == 2 for e in range(1, 6))  # the model's and the EMA's
    assert os.path.isfile(os.path.join(run, "epoch_2_ema.pdparams"))

    # from epoch_2: its own EMA weights, not latest's (epoch 5's)
    res_dir = str(tmp_path / "from_epoch")
    res = run_tool("train.py", "-c", write_config(ema_config(digits_dir, res_dir), str(tmp_path / "r.yaml")),
                   "-o", f"Global.checkpoints={run}/epoch_2")
    assert res.returncode == 0, res.stdout[-2000:]
    assert "continuing at epoch 3" in res.stdout and "holds no EMA weights" not in res.stdout
    res_evals = eval_lines(res.stdout)
    assert sorted(res_evals) == [3, 4, 5]
    for epoch in (3, 4, 5):
        assert res_evals[epoch] == full_evals[epoch], epoch
    for name in ("latest_ema", "latest"):
        a = paddle.load(os.path.join(run, name + ".pdparams"))
        b = paddle.load(os.path.join(res_dir, "PPLCNet_x0_25", name + ".pdparams"))
        for key in set(a) - {META_KEY}:
            np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=0, atol=1e-6, err_msg=f"{name} {key}")

    # from latest, after a SIGKILL once epoch 2 was saved
    kill_dir = str(tmp_path / "killed")
    path = write_config(ema_config(digits_dir, kill_dir), str(tmp_path / "k.yaml"))
    log = tmp_path / "killed.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "train.py"), "-c", path], stdout=f,
                                stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            deadline = time.time() + 120
            while "epoch_2\n" not in log.read_text() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    kill_run = os.path.join(kill_dir, "PPLCNet_x0_25")
    done = paddle.load(os.path.join(kill_run, "latest.pdstates"))["epoch"]
    assert 2 <= done < 5, done
    again = run_tool("train.py", "-c", path, "-o", f"Global.checkpoints={kill_run}/latest")
    assert again.returncode == 0, again.stdout[-2000:]
    assert f"continuing at epoch {done + 1}" in again.stdout
    again_evals = eval_lines(again.stdout)
    assert sorted(again_evals) == list(range(done + 1, 6))
    for epoch in again_evals:
        assert again_evals[epoch] == full_evals[epoch], epoch


def test_second_run_into_a_used_folder_refuses(tmp_path, digits_dir):
    out = str(tmp_path / "o")
    path = write_config(tiny_config(digits_dir, out, epochs=1), str(tmp_path / "c.yaml"))
    assert run_tool("train.py", "-c", path).returncode == 0
    again = run_tool("train.py", "-c", path)
    assert again.returncode != 0
    assert "already holds the checkpoints of an earlier run" in again.stdout + again.stderr
    over = run_tool("train.py", "-c", path, "-o", "Global.resume_policy=overwrite")
    assert over.returncode == 0
    assert any(d.startswith("PPLCNet_x0_25.old-") for d in os.listdir(out))


def test_a_head_smaller_than_the_data_stops_before_training(tmp_path, digits_dir):
    out = str(tmp_path / "o")
    path = write_config(tiny_config(digits_dir, out, epochs=1, class_num=2), str(tmp_path / "c.yaml"))
    # the data's 3 classes (label_list.txt beside the lists) win over class_num 2, with a warning
    taken = run_tool("train.py", "-c", path, "-o", "Global.max_iters_per_epoch=1")
    assert taken.returncode == 0, (taken.stdout + taken.stderr)[-2000:]
    assert "Arch.class_num is 2 in the config, but" in taken.stdout + taken.stderr
    proc = run_tool("train.py", "-c", path, "-o", "Global.class_num_from_data=False",
                    "-o", f"Global.output_dir={out}2")
    assert proc.returncode == 2
    text = proc.stdout + proc.stderr
    assert "Arch.class_num: 2 is kept (Global.class_num_from_data=False), but" in text and "names 3 classes" in text
    assert "[Train]" not in text
