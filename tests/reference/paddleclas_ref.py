"""Build PaddleClas 2.x's own backbone classes from the installed ``paddleclas`` wheel.

Importing ``paddleclas`` runs its ``__init__``, which imports every model and many packages we
do not install. Instead the backbone module files are loaded by path under a private package
name (``_paddleclas_ref``) whose parent packages are empty stubs pointing at the wheel's
folders, so only what a backbone file imports itself is loaded. Two utility modules are
stubbed: ``utils.save_load`` (downloads, ``requests``, ``tqdm``; the reference models are built
without weights) and ``utils.logger``, whose logger is named ``ppcls`` like our own package's.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import types
from collections.abc import Callable

import numpy as np
import paddle
import paddle.nn as nn

from tests.arch.weights.fixture_utils import random_state

INSTALL_HINT = "pip install --no-deps paddleclas==2.6.0"
ROOT = "_paddleclas_ref"

# module file (relative to ppcls/arch/backbone) holding each reference model
MODULES: dict[str, str] = {
    **{f"PPLCNet_x{w}": "legendary_models.pp_lcnet"
       for w in ("0_25", "0_35", "0_5", "0_75", "1_0", "1_5", "2_0", "2_5")},
    **{f"ShuffleNetV2_x{w}": "model_zoo.shufflenet_v2" for w in ("0_25", "0_33", "0_5", "1_0", "1_5", "2_0")},
    "ShuffleNetV2_swish": "model_zoo.shufflenet_v2",
    "SqueezeNet1_0": "model_zoo.squeezenet",
    "SqueezeNet1_1": "model_zoo.squeezenet",
    **{f"MobileNeXt_x{w}": "model_zoo.mobilenext" for w in ("0_35", "0_5", "0_75", "1_0", "1_4")},
    "PeleeNet": "model_zoo.peleenet",
}


class ReferenceUnavailable(ImportError):
    """The PaddleClas wheel is not installed, or its layout is not the one expected."""


def wheel_dir() -> str:
    """Folder of the installed ``paddleclas`` package (found without importing it)."""
    spec = importlib.util.find_spec("paddleclas")
    if spec is None or not spec.submodule_search_locations:
        raise ReferenceUnavailable(
            f"the PaddleClas reference models need the paddleclas wheel: {INSTALL_HINT} "
            "(--no-deps: only its model files are used)"
        )
    path = list(spec.submodule_search_locations)[0]
    if not os.path.isdir(os.path.join(path, "ppcls", "arch", "backbone")):
        raise ReferenceUnavailable(f"{path} has no ppcls/arch/backbone folder; reinstall with {INSTALL_HINT}")
    return path


def _package(name: str, path: str) -> types.ModuleType:
    """An empty package module whose submodules are looked up in ``path``."""
    if name in sys.modules:
        return sys.modules[name]
    module = types.ModuleType(name)
    module.__path__ = [path]
    module.__package__ = name
    sys.modules[name] = module
    return module


def _load_dygraph_pretrain(*args: object, **kwargs: object) -> None:
    """Stands for PaddleClas's weight download: the reference models never load weights."""
    raise RuntimeError("the PaddleClas reference models are built without pretrained weights")


def _stub(name: str, **attrs: object) -> None:
    """Register a module ``name`` holding ``attrs``, unless already there."""
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module


def _install_stubs() -> None:
    root = wheel_dir()
    ppcls = os.path.join(root, "ppcls")
    backbone = os.path.join(ppcls, "arch", "backbone")
    _package(ROOT, root)
    _package(f"{ROOT}.ppcls", ppcls)
    _package(f"{ROOT}.ppcls.utils", os.path.join(ppcls, "utils"))
    _stub(f"{ROOT}.ppcls.utils.save_load", load_dygraph_pretrain=_load_dygraph_pretrain)
    log = logging.getLogger(__name__)
    _stub(f"{ROOT}.ppcls.utils.logger", warning=log.warning, error=log.error, info=log.info, debug=log.debug)
    _package(f"{ROOT}.ppcls.arch", os.path.join(ppcls, "arch"))
    _package(f"{ROOT}.ppcls.arch.backbone", backbone)
    for sub in ("base", "legendary_models", "model_zoo"):
        _package(f"{ROOT}.ppcls.arch.backbone.{sub}", os.path.join(backbone, sub))


def module(relative: str) -> types.ModuleType:
    """The wheel's ``ppcls/arch/backbone/<relative>`` module (dotted), loaded by path."""
    _install_stubs()
    try:
        return importlib.import_module(f"{ROOT}.ppcls.arch.backbone.{relative}")
    except ImportError as e:
        raise ReferenceUnavailable(f"cannot load PaddleClas's {relative} ({e}); expected {INSTALL_HINT}") from e


def entry(model_name: str) -> Callable[..., nn.Layer]:
    """PaddleClas's registered function building ``model_name``."""
    if model_name not in MODULES:
        raise KeyError(f"no PaddleClas reference for {model_name}; known: {', '.join(sorted(MODULES))}")
    return getattr(module(MODULES[model_name]), model_name)


def build(model_name: str, **kwargs: object) -> nn.Layer:
    """PaddleClas's ``model_name`` (no pretrained weights), in eval mode.

    Built in a fresh parameter-name scope: PaddleClas's ShuffleNetV2 and SqueezeNet give their
    parameters fixed names, which Paddle's dygraph mode allows only once per scope.
    """
    build_fn = entry(model_name)
    with paddle.utils.unique_name.guard():
        model = build_fn(**kwargs)
    model.eval()
    return model


def randomise(model: nn.Layer, seed: int, batch: np.ndarray) -> None:
    """Seeded random weights, then random BatchNorm statistics around those of each BN's input.

    Purely random statistics let a deep network's activations (and logits) grow to the hundreds,
    where float32 rounding alone exceeds 1e-4 and softmax saturates; centring them on the
    statistics of the test batch keeps every layer near unit scale, so the comparison stays sharp.
    """
    spec = [(k, v.shape, str(v.numpy().dtype)) for k, v in model.state_dict().items()]
    model.set_state_dict(random_state(spec, seed))
    rng = np.random.default_rng(seed)

    @paddle.no_grad()
    def calibrate(layer: nn.Layer, inputs: tuple[paddle.Tensor, ...]) -> None:
        x = inputs[0].numpy().astype("float64")
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        channels = mean.shape[0]
        layer._mean.set_value((mean + rng.normal(0.0, 0.2, channels) * np.sqrt(var)).astype("float32"))
        # the floor keeps near-constant channels from magnifying float32 rounding 30-fold
        variance = var * rng.uniform(0.5, 1.5, channels) + 0.5 * var.mean() + 1e-3
        layer._variance.set_value(variance.astype("float32"))

    hooks = [layer.register_forward_pre_hook(calibrate) for layer in model.sublayers()
             if hasattr(layer, "_mean") and hasattr(layer, "_variance")]
    model.eval()
    with paddle.no_grad():
        model(paddle.to_tensor(batch))
    for hook in hooks:
        hook.remove()


def random_checkpoint(model_name: str, path: str, seed: int, batch: np.ndarray) -> nn.Layer:
    """Save PaddleClas's ``model_name`` with randomised weights to ``path`` as PaddleClas does."""
    model = build(model_name)
    randomise(model, seed, batch)
    paddle.save(model.state_dict(), path)
    return model
