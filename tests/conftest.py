"""Shared fixtures: small real data sets built in temporary folders, config writing."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def write_digits_subset(root: str, classes: int = 3, per_class: int = 24, val_per_class: int = 6,
                        size: int = 16) -> str:
    """Write real handwritten digits (scikit-learn) as PNGs with train/val lists and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    train, val = [], []
    for cls in range(classes):
        idx = np.flatnonzero(digits.target == cls)[: per_class + val_per_class]
        os.makedirs(os.path.join(root, "images", str(cls)), exist_ok=True)
        for n, i in enumerate(idx):
            img = (digits.images[i] * (255 / 16)).astype(np.uint8)
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST)
            rel = f"images/{cls}/{i:04d}.png"
            cv2.imwrite(os.path.join(root, rel), img)
            (val if n >= per_class else train).append(f"{rel} {cls}\n")
    with open(os.path.join(root, "train_list.txt"), "w") as f:
        f.writelines(train)
    with open(os.path.join(root, "val_list.txt"), "w") as f:
        f.writelines(val)
    with open(os.path.join(root, "label_list.txt"), "w") as f:
        f.writelines(f"{c} digit {c}\n" for c in range(classes))
    return root


@pytest.fixture(autouse=True)
def _sigchld_restored():
    """Each test leaves SIGCHLD as it found it.

    A Paddle DataLoader with worker processes installs a process-wide SIGCHLD handler once and keeps it
    (``paddle.io.multiprocess_utils``). In this one test process, that handler plus OpenVINO loaded by a
    later test made the next child process's exit kill the whole run with SIGSEGV (reproduced: the
    tests/data loaders, then tests/deploy/test_backends.py, then any subprocess). Restoring the handler
    after each test keeps that state from leaking; a loader in a later test installs it again.
    """
    import signal

    before = signal.getsignal(signal.SIGCHLD)
    yield
    if signal.getsignal(signal.SIGCHLD) is not before:
        signal.signal(signal.SIGCHLD, before)
        utils = sys.modules.get("paddle.io.multiprocess_utils")
        if utils is not None and hasattr(utils, "_SIGCHLD_handler_set"):
            utils._SIGCHLD_handler_set = False


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> str:
    return write_digits_subset(str(tmp_path_factory.mktemp("digits")))


def tiny_config(data_dir: str, out_dir: str, arch: str = "PPLCNet_x0_25", epochs: int = 2,
                class_num: int = 3, size: int = 32, batch_size: int = 16, **global_extra) -> dict:
    """A complete PaddleClas-schema config for a short CPU run on ``data_dir``."""
    norm = {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "order": ""}
    eval_ops = [{"DecodeImage": {"to_rgb": True, "channel_first": False}},
                {"ResizeImage": {"size": size}}, {"NormalizeImage": dict(norm)}]
    return {
        "Global": {"checkpoints": None, "pretrained_model": None, "output_dir": out_dir, "device": "cpu",
                   "save_interval": 1, "eval_during_train": True, "eval_interval": 1, "epochs": epochs,
                   "print_batch_step": 2, "use_visualdl": False, "image_shape": [3, size, size],
                   "save_inference_dir": os.path.join(out_dir, "inference"), "seed": 7, **global_extra},
        "Arch": {"name": arch, "class_num": class_num},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0, "epsilon": 0.1}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9,
                      "lr": {"name": "Cosine", "learning_rate": 0.05, "warmup_epoch": 1},
                      "regularizer": {"name": "L2", "coeff": 0.0001}},
        "DataLoader": {
            "Train": {"dataset": {"name": "ImageNetDataset", "image_root": data_dir,
                                  "cls_label_path": os.path.join(data_dir, "train_list.txt"),
                                  "transform_ops": [eval_ops[0], {"RandCropImage": {"size": size, "scale": [0.7, 1.0]}},
                                                    {"RandFlipImage": {"flip_code": 1}}, {"NormalizeImage": dict(norm)}]},
                      "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": False,
                                  "shuffle": True},
                      "loader": {"num_workers": 0, "use_shared_memory": False}},
            "Eval": {"dataset": {"name": "ImageNetDataset", "image_root": data_dir,
                                 "cls_label_path": os.path.join(data_dir, "val_list.txt"),
                                 "transform_ops": eval_ops},
                     "sampler": {"name": "DistributedBatchSampler", "batch_size": 16, "drop_last": False,
                                 "shuffle": False},
                     "loader": {"num_workers": 0, "use_shared_memory": False}},
        },
        "Infer": {"infer_imgs": os.path.join(data_dir, "images"), "batch_size": 4,
                  "transforms": eval_ops + [{"ToCHWImage": None}],
                  "PostProcess": {"name": "Topk", "topk": 2,
                                  "class_id_map_file": os.path.join(data_dir, "label_list.txt")}},
        "Metric": {"Train": [{"TopkAcc": {"topk": [1, 5]}}], "Eval": [{"TopkAcc": {"topk": [1, 5]}}]},
    }


def write_config(cfg: dict, path: str) -> str:
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return path


def run_tool(tool: str, *args: str, cwd: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``tools/<tool>`` in a subprocess, as a user would."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", tool), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)
