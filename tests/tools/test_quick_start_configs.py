"""Every quick-start config runs as README shows: it builds the digits set, then trains."""

from __future__ import annotations

import glob
import os

import pytest

from tests.conftest import REPO, run_tool

CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "quick_start", "*_digits.yaml")))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("quick"))


def test_digits_set_is_built_once_with_a_documented_split(workdir):
    from ppcls.data.prepare.digits import prepare_digits

    root = prepare_digits(os.path.join(workdir, "dataset", "digits"))
    train = open(os.path.join(root, "train_list.txt")).read().splitlines()
    val = open(os.path.join(root, "val_list.txt")).read().splitlines()
    assert len(train) + len(val) == 1797 and len(val) == 359
    per_class = [sum(line.endswith(f" {c}") for line in val) for c in range(10)]
    assert all(34 <= n <= 38 for n in per_class)  # 20 % of each class
    stamp = os.path.getmtime(os.path.join(root, "train_list.txt"))
    assert prepare_digits(root) == root and os.path.getmtime(os.path.join(root, "train_list.txt")) == stamp


@pytest.mark.parametrize("config", CONFIGS, ids=os.path.basename)
def test_quick_start_config_trains(config, workdir):
    name = os.path.basename(config)
    proc = run_tool("train.py", "-c", config, "-o", "Global.epochs=1", "-o", "Global.max_iters_per_epoch=2",
                    "-o", "Global.eval_during_train=False", "-o", f"Global.output_dir=./out_{name}", cwd=workdir)
    assert proc.returncode == 0, proc.stdout[-2500:] + proc.stderr[-2500:]
    assert "[Train][Epoch 1/1][Iter: 2/2]" in proc.stdout
