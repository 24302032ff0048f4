"""SIGTERM during training, NaN losses, file names with spaces (PaddleClas pitfalls)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import paddle

from tests.conftest import REPO, run_tool, tiny_config, write_config


def test_sigterm_saves_latest_stops_workers_and_resumes(tmp_path, digits_dir):
    out = str(tmp_path / "o")
    cfg = tiny_config(digits_dir, out, epochs=200, print_batch_step=1)
    cfg["DataLoader"]["Train"]["loader"] = {"num_workers": 2, "use_shared_memory": True}
    path = write_config(cfg, str(tmp_path / "c.yaml"))
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "train.py"), "-c", path],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.time() + 180
        while time.time() < deadline and "[Train][Epoch 2/200][Iter: 2/" not in open(tmp_path / "run.log").read():
            time.sleep(0.2)
        assert proc.poll() is None, open(tmp_path / "run.log").read()[-2000:]
        sent = time.time()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.time() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    text = open(tmp_path / "run.log").read()
    assert code != 0 and took < 20, text[-2000:]
    assert "SIGTERM received" in text and "training stopped: received SIGTERM" in text
    run = os.path.join(out, "PPLCNet_x0_25")
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")]
    stopped_in = int(re.search(r"received SIGTERM at epoch (\d+), iteration", text).group(1))
    states = paddle.load(os.path.join(run, "latest.pdstates"))
    assert states["epoch"] == stopped_in - 1  # the unfinished epoch is repeated on resume
    # no worker process is left behind
    children = subprocess.run(["pgrep", "-f", path], capture_output=True, text=True).stdout.split()
    assert children == []
    resumed = run_tool("train.py", "-c", path, "-o", f"Global.checkpoints={run}/latest",
                       "-o", f"Global.epochs={stopped_in}")
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert f"continuing at epoch {stopped_in}" in resumed.stdout


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, digits_dir):
    out = str(tmp_path / "o")
    cfg = tiny_config(digits_dir, out, epochs=6)
    # a sane first epoch, then an absurd learning rate
    cfg["Optimizer"]["lr"] = {"name": "Piecewise", "decay_epochs": [1], "values": [0.01, 1.0e12]}
    cfg["Optimizer"]["regularizer"] = None
    proc = run_tool("train.py", "-c", write_config(cfg, str(tmp_path / "c.yaml")))
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(r"non-finite loss at epoch \d+, iteration \d+/\d+ \(CELoss: (nan|inf|-inf), loss: (nan|inf|-inf)\)", text), text[-1500:]
    assert "non-finite loss at epoch 2" in text and "latest, epoch 1) is kept" in text
    run = os.path.join(out, "PPLCNet_x0_25")
    assert paddle.load(os.path.join(run, "latest.pdstates"))["epoch"] == 1
    for name in ("best_model", "latest"):
        for value in paddle.load(os.path.join(run, name + ".pdparams")).values():
            assert np.isfinite(value.numpy()).all(), name


def test_file_names_with_spaces_and_tab_delimiter(tmp_path, digits_dir):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(digits_dir, root)
    lines = []
    for line in open(root / "train_list.txt"):
        rel, label = line.rsplit(None, 1)
        spaced = rel.replace(".png", " photo copy.png")
        os.rename(root / rel, root / spaced)
        lines.append(f"{spaced}\t{label}\n")
    (root / "train_list.txt").write_text("".join(lines).replace("\t", " "))
    (root / "train_tab.txt").write_text("".join(lines))
    from ppcls.data.dataset import ImageNetDataset

    ds = ImageNetDataset(str(root), str(root / "train_list.txt"), None, class_num=3)
    assert ds.paths[0].endswith(" photo copy.png") and len(ds) == 72
    ds_tab = ImageNetDataset(str(root), str(root / "train_tab.txt"), None, delimiter="\t", class_num=3)
    assert ds_tab.paths == ds.paths and ds_tab.labels == ds.labels
