"""README's two-process command, as a user runs it, on every shipped quick-start config.

``python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py -c <quick start>``
with the config's own ``Global.to_static: True`` (short: two iterations, no evaluation). Before
the fix every config stopped on both ranks with ``ValueError: The decorated function forward
requires 0 arguments ... but received 1`` and the whole input tensor printed: ``to_static`` was
applied to the ``paddle.DataParallel`` wrapper. A second test checks, in two gloo processes,
that the gradient exchange averages exactly (static graph and eager) and that rank 0's weights
reach every rank.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "quick_start", "*_digits*.yaml")))
LAUNCH = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2"]


def _launch(args: list[str], cwd: str, log_dir: str, env: dict | None = None,
            timeout: int = 300) -> tuple[subprocess.CompletedProcess, str, str]:
    proc = subprocess.run([*LAUNCH, "--log_dir", log_dir, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})))
    logs = []
    for r in (0, 1):
        path = os.path.join(log_dir, f"workerlog.{r}")
        logs.append(open(path, errors="replace").read() if os.path.isfile(path) else "")
    return proc, logs[0], logs[1]


def _report(*logs: str) -> str:
    """What failed, bounded: the error lines (each cut) and the end of each log."""
    errors = [ln[:300] for log in logs for ln in log.splitlines() if "Error" in ln or "ERROR" in ln]
    return "\n".join(errors[:20]) + "\n---\n" + "\n---\n".join(log[-1500:] for log in logs)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder like a user's checkout: the digits set built once, a weights cache for the fine-tune recipe."""
    from ppcls.data.prepare.digits import prepare_digits
    from tests.arch.weights.fixture_utils import input_batch
    from tests.reference import paddleclas_ref

    work = tmp_path_factory.mktemp("launch")
    prepare_digits(str(work / "dataset" / "digits"))
    cache = work / "cache"
    cache.mkdir()
    # the fine-tune recipe's published weights, stood in for as tests/tools/test_finetune.py does (no network)
    paddleclas_ref.random_checkpoint("PPLCNet_x0_25", str(cache / "PPLCNet_x0_25_pretrained.pdparams"), 0,
                                     input_batch(0, (2, 3, 64, 64)))
    return str(work)


@pytest.mark.parametrize("config", CONFIGS, ids=os.path.basename)
def test_quick_start_trains_under_the_two_process_launch(config, workdir):
    with open(config) as f:
        assert yaml.safe_load(f)["Global"]["to_static"] is True  # the combination that failed
    name = os.path.basename(config)[: -len(".yaml")]
    log_dir = os.path.join(workdir, f"log_{name}")
    proc, rank0, rank1 = _launch(
        [os.path.join(REPO, "tools", "train.py"), "-c", config, "-o", "Global.epochs=1",
         "-o", "Global.max_iters_per_epoch=2", "-o", "Global.print_batch_step=1",
         "-o", "Global.eval_during_train=False", "-o", f"Global.output_dir=./out_{name}"],
        workdir, log_dir, env={"PPCLS_CACHE_DIR": os.path.join(workdir, "cache")})
    assert proc.returncode == 0, _report(rank0, rank1, proc.stdout)
    assert "[Train][Epoch 1/1][Iter: 2/2]" in rank0
    assert "weights identical on all 2 ranks" in rank0
    if "finetune" in name:  # fine-tuning rates are not scaled to the batch
        assert "fine-tuning mode (Arch.pretrained is set): learning rate 0.02" in rank0
    else:
        assert "global batch 64 (recipe: 32)" in rank0  # 32 per rank x 2 ranks
    for log in (rank0, rank1):
        assert "Traceback" not in log and "requires 0 arguments" not in log


GRAD_CHECK = r'''
import sys
import numpy as np
import paddle

sys.path.insert(0, sys.argv[1])
from ppcls.arch import build_model
from ppcls.utils import dist

dist.init_parallel()
rank = dist.rank()
rng = np.random.RandomState(0)
data = [(rng.rand(4, 3, 32, 32).astype("float32"), rng.randint(0, 3, (4,)).astype("int64")) for _ in range(2)]
for to_static in (True, False):
    paddle.seed(100 + rank)  # different initial weights on purpose: rank 0's must reach rank 1
    net = build_model({"name": "PPLCNet_x0_25", "class_num": 3, "dropout_prob": 0.0})
    model, sync = dist.wrap_for_training(net, to_static=to_static)
    assert sync is not None and model is net, (type(model), sync)
    same, _ = dist.replicas_identical(net)
    params = [p for p in net.parameters() if not p.stop_gradient]

    def grads(batch):
        x, y = batch
        paddle.nn.functional.cross_entropy(model(paddle.to_tensor(x)), paddle.to_tensor(y)).backward()
        out = [p.grad.numpy().copy() for p in params]
        net.clear_gradients()
        return out

    model.train()
    expected = [(a + b) / 2 for a, b in zip(grads(data[0]), grads(data[1]))]  # both ranks' batches, here
    own = grads(data[rank])
    x, y = data[rank]
    paddle.nn.functional.cross_entropy(model(paddle.to_tensor(x)), paddle.to_tensor(y)).backward()
    sync()
    diff = max(float(np.abs(p.grad.numpy() - e).max()) for p, e in zip(params, expected))
    own_diff = max(float(np.abs(o - e).max()) for o, e in zip(own, expected))
    print(f"to_static={to_static}: start weights identical {same}; synced grads max diff {diff:.3g}; "
          f"unsynced {own_diff:.3g}", flush=True)
'''


def test_gradients_are_averaged_over_the_ranks(tmp_path):
    script = tmp_path / "grad_check.py"
    script.write_text(GRAD_CHECK)
    proc, rank0, rank1 = _launch([str(script), REPO], str(tmp_path), str(tmp_path / "log"), timeout=180)
    assert proc.returncode == 0, _report(rank0, rank1)
    for log in (rank0, rank1):
        for mode in ("True", "False"):  # static graph, eager
            match = re.search(rf"to_static={mode}: start weights identical (\w+); synced grads max diff (\S+); "
                              r"unsynced (\S+)", log)
            assert match, log[-2000:]
            assert match.group(1) == "True"
            assert float(match.group(2)) < 1e-5 < float(match.group(3))
