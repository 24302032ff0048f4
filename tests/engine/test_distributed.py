"""Two CPU processes through paddle.distributed.launch (gloo) running tools/train.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import paddle

from ppcls.arch import build_model
from ppcls.utils.dist import parameter_checksum
from tests.conftest import REPO, run_tool, tiny_config, write_config


def test_two_process_cpu_training(tmp_path, digits_dir):
    out = str(tmp_path / "out")
    cfg = tiny_config(digits_dir, out, epochs=2, batch_size=8)
    cfg["DataLoader"]["Train"]["loader"] = {"num_workers": 1, "use_shared_memory": True}
    path = write_config(cfg, str(tmp_path / "c.yaml"))
    log_dir = str(tmp_path / "log")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", log_dir,
         os.path.join(REPO, "tools", "train.py"), "-c", path],
        capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    rank0 = open(os.path.join(log_dir, "workerlog.0")).read()
    rank1 = open(os.path.join(log_dir, "workerlog.1")).read()
    assert proc.returncode == 0, rank0[-3000:] + rank1[-3000:]
    # both ranks end with identical weights
    match = re.search(r"weights identical on all 2 ranks \(checksums ([\d.e+-]+), ([\d.e+-]+)\)", rank0)
    assert match, rank0[-2000:]
    # the sampler shards: 72 samples, batch 8, 2 ranks -> 5 iterations per rank per epoch
    assert "[Iter: 5/5]" in rank0 and "[Iter: 6/" not in rank0
    # only rank 0 writes logs and checkpoints; rank 1 logs warnings only
    assert "[Train]" not in rank1
    run = os.path.join(out, "PPLCNet_x0_25")
    assert os.path.isfile(os.path.join(run, "latest.pdparams")) and os.path.isfile(os.path.join(run, "train.log"))
    # the checkpoint holds exactly the weights the ranks ended with
    model = build_model({"name": "PPLCNet_x0_25", "class_num": 3})
    model.set_state_dict(paddle.load(os.path.join(run, "latest.pdparams")))
    assert abs(parameter_checksum(model) - float(match.group(1))) <= 1e-9 * abs(float(match.group(1)))
    # eval metrics are all-reduced: equal to a single-process eval of the same weights
    dist_top1 = re.findall(r"\[Eval\]\[Epoch 2\]\[Avg\].*top1: ([\d.]+)", rank0)[-1]
    single = run_tool("eval.py", "-c", path, "-o", f"Global.pretrained_model={run}/latest")
    assert single.returncode == 0, single.stderr[-2000:]
    assert re.search(r"\[Eval\]\[Epoch 0\]\[Avg\].*top1: ([\d.]+)", single.stdout).group(1) == dist_top1
