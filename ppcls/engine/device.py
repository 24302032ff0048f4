"""Device and thread set-up from ``Global``; GPU requests on a CPU build fail clearly."""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import paddle

from ppcls.utils import dist
from ppcls.utils.errors import ConfigError, DeviceError, summarize

logger = logging.getLogger(__name__)


def resolve_device(device: str | None) -> str:
    """``auto`` (or unset): the GPU when this Paddle build has CUDA and sees a GPU, else the CPU (logged)."""
    device = (device or "auto").lower()
    if device != "auto":
        return device
    has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    chosen = "gpu" if has_gpu else "cpu"
    logger.info("Global.device=auto: %s (%s)", chosen,
                "this Paddle build has CUDA and a GPU" if has_gpu else
                "this Paddle build has no CUDA support" if not paddle.device.is_compiled_with_cuda() else "no GPU is visible")
    return chosen


def setup_device(device: str = "auto", num_threads: int | None = None, use_mkldnn: bool | None = None) -> str:
    """Select ``device`` ('auto', 'cpu', 'gpu', 'gpu:N', ...) and CPU threads; returns the place name."""
    device = resolve_device(device)
    kind = device.split(":")[0]
    if kind == "gpu" and not paddle.device.is_compiled_with_cuda():
        raise DeviceError(
            "Global.device=gpu, but this Paddle build has no CUDA support (paddlepaddle is the CPU "
            "build). Install paddlepaddle-gpu, or set -o Global.device=cpu"
        )
    if kind in ("xpu", "npu", "mlu") and not paddle.device.is_compiled_with_custom_device(kind) and not (
        kind == "xpu" and paddle.device.is_compiled_with_xpu()
    ):
        raise DeviceError(f"Global.device={device}: this Paddle build does not support {kind}")
    if kind not in ("cpu", "gpu", "xpu", "npu", "mlu"):
        raise ConfigError(f"Global.device: expected auto, cpu, gpu, xpu, npu or mlu, got {summarize(device)}")
    if kind == "gpu" and ":" not in device:
        device = f"gpu:{int(os.environ.get('FLAGS_selected_gpus', '0').split(',')[0])}"
    paddle.set_device(device)
    if kind == "cpu":
        threads = num_threads or _default_threads()
        paddle.base.core.set_num_threads(threads)
        # the fast depthwise conv (ppcls.ops) cannot ask Paddle for its thread count: it reads this
        os.environ.setdefault("PPCLS_DEPTHWISE_THREADS", str(threads))
        if use_mkldnn is not None:
            paddle.set_flags({"FLAGS_use_mkldnn": bool(use_mkldnn)})
        logger.info("device cpu: %d math threads, oneDNN kernels %s", threads,
                    "on" if paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"] else "off")
    return device


def _default_threads() -> int:
    """All cores, shared among this machine's processes of a multi-process CPU run."""
    cores = os.cpu_count() or 1
    return max(1, cores // dist.local_world_size())


def set_seed(seed: int | None) -> None:
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def seed_epoch(seed: int | None, epoch: int) -> None:
    """Reseed ``random``, ``np.random`` and Paddle's generator from (seed, rank, epoch).

    Called at the start of each epoch, so an epoch's augmentation (with num_workers=0 it draws
    in the main process) and dropout depend only on the seed and the epoch: a run resumed at
    epoch N repeats the uninterrupted run's epoch N.
    """
    if seed is None:
        return
    value = (int(seed) * 1_000_003 + dist.rank() * 10_007 + epoch * 101) % (2**32)
    random.seed(value)
    np.random.seed(value)
    paddle.seed(value)
