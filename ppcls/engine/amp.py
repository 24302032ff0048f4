"""Mixed precision from the ``AMP`` section: fp16 O1/O2 on GPUs, bfloat16 on CPUs that have it."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import paddle

from ppcls.utils.errors import ConfigError, DeviceError, summarize

logger = logging.getLogger(__name__)


def build_amp(amp_cfg: Mapping | None, device: str, optimizer: Any, model: paddle.nn.Layer
              ) -> tuple[Any | None, Callable[[], Any] | None]:
    """(GradScaler or None, autocast context factory or None) for the run."""
    if not amp_cfg or not amp_cfg.get("use_amp", True) or amp_cfg == {}:
        return None, None
    if "use_amp" in amp_cfg and not amp_cfg["use_amp"]:
        return None, None
    level = str(amp_cfg.get("level", "O1")).upper()
    if level not in ("O1", "O2"):
        raise ConfigError(f"AMP.level: expected O1 or O2, got {summarize(amp_cfg.get('level'))}")
    dtype = str(amp_cfg.get("dtype", "float16")).lower()
    on_gpu = str(device).lower().startswith("gpu")
    if dtype == "float16" and not on_gpu:
        raise DeviceError(
            "AMP with float16 needs a GPU (Global.device=gpu and the paddlepaddle-gpu build); on the CPU "
            "use AMP.dtype=bfloat16 (where the CPU supports it) or remove the AMP section"
        )
    if dtype == "bfloat16" and not on_gpu and not paddle.amp.is_bfloat16_supported("cpu"):
        raise DeviceError("AMP.dtype=bfloat16: this CPU / Paddle build does not support bfloat16")
    if dtype not in ("float16", "bfloat16"):
        raise ConfigError(f"AMP.dtype: expected float16 or bfloat16, got {summarize(dtype)}")
    scaler = None
    if dtype == "float16":
        scaler = paddle.amp.GradScaler(
            init_loss_scaling=float(amp_cfg.get("scale_loss", 65536.0)),
            use_dynamic_loss_scaling=bool(amp_cfg.get("use_dynamic_loss_scaling", True)),
        )
    if level == "O2":
        paddle.amp.decorate(models=model, optimizers=optimizer, level="O2", dtype=dtype)
    logger.info("AMP on: level %s, dtype %s", level, dtype)
    context = functools.partial(paddle.amp.auto_cast, enable=True, level=level, dtype=dtype,
                                use_promote=bool(amp_cfg.get("use_promote", False)))
    return scaler, context
