"""The deploy config: loading, ``-o`` overrides, ``Global`` validation.

This package stands alone (no ``ppcls`` import) so the ``deploy/`` folder can be copied to a
server together with an exported model folder. The override syntax and the number parser are
``config_syntax.py``, the image listing and atomic writes ``files.py`` (both shared with ppcls,
see their notes); their names stay importable from here.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from . import config_syntax
from .backends import BACKENDS as BACKEND_TABLE
from .backends.base import PRECISIONS
from .config_syntax import OverrideRules, parse_number
from .config_syntax import suggest as _suggest
from .errors import DeployConfigError, DeployFileError, short
from .files import (
    IMAGE_EXTENSIONS,
    atomic_copy,
    atomic_write_text,
    list_images,
    list_named_images,
    write_json_lines,
)

__all__ = ["IMAGE_EXTENSIONS", "apply_deferred_overrides", "apply_override", "atomic_copy", "atomic_write_text",
           "check_global", "deep_merge", "list_images", "list_named_images", "load_config", "load_yaml",
           "normalize_postprocess", "parse_number", "parse_override", "write_json_lines"]

# Global keys of deploy/configs/inference_cls.yaml: name -> (accepted types, default).
# The names are PaddleClas's (deploy/configs/inference_cls.yaml) plus backend/save_results.
GLOBAL_KEYS: dict[str, tuple[tuple, Any]] = {
    "infer_imgs": ((str, list, type(None)), None),
    "inference_model_dir": ((str, type(None)), None),
    "batch_size": ((int,), 1),
    "use_gpu": ((bool,), False),
    "gpu_id": ((int,), 0),
    "gpu_mem": ((int,), 8000),
    "enable_mkldnn": ((bool,), True),
    "cpu_num_threads": ((int,), 2),
    "enable_benchmark": ((bool,), False),
    "benchmark_warmup": ((int,), 2),
    "precision": ((str, type(None)), None),  # fp32 | fp16 | int8; None: from use_fp16 / use_int8, else fp32
    "use_fp16": ((bool,), False),  # PaddleClas's switch: precision fp16
    "use_int8": ((bool,), False),  # PaddleClas's switch: precision int8
    "ir_optim": ((bool,), True),
    "use_tensorrt": ((bool,), False),
    "min_subgraph_size": ((int,), 15),
    "trt_shape_range_file": ((str, type(None)), None),
    "collect_trt_shape_range": ((bool,), False),
    "enable_profile": ((bool,), False),
    "backend": ((str,), "paddle"),
    "use_onnx": ((bool,), False),
    "ort_allow_spinning": ((bool,), True),
    "prefetch": ((bool,), True),
    "workers": ((int,), 1),
    "save_results": ((str, type(None)), None),
    "input_shape": ((list, type(None)), None),
    "model_name": ((str, type(None)), None),
    "save_log_path": ((str, type(None)), None),
    # the share of inputs that may be undecodable before predict_cls.py fails (training's key and default)
    "max_bad_image_ratio": ((float, int), 0.01),
}
# keys an exported model's inference.yml carries in Global that the predictor reads or ignores
MODEL_GLOBAL_KEYS = ("model_name", "input_shape", "class_num", "output", "paddle_version")
SECTIONS = ("Global", "PreProcess", "PostProcess")
BACKENDS = tuple(BACKEND_TABLE)  # the names of deploy/python/backends/__init__.py's table, in its order
# overrides into a list item (``PreProcess.transform_ops.ResizeImage.resize_short=256``) that the
# deploy config itself has no list for: applied by the predictor onto the list it ends up using
# (the deploy config's, else the model's inference.yml), see :func:`apply_deferred_overrides`
DEFERRED_KEY = "_list_overrides"
PATCHABLE_LISTS = (("PreProcess", "transform_ops"),)


# ----------------------------------------------------------------------------- config files


def load_yaml(path: str) -> dict:
    """A YAML mapping from ``path``; errors name the file."""
    if not os.path.isfile(path):
        raise DeployFileError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise DeployConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DeployConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


OVERRIDE_RULES = OverrideRules(SECTIONS)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``A.b.c=value`` → (["A", "b", "c"], value parsed with ``yaml.safe_load``)."""
    return config_syntax.parse_override(text, OVERRIDE_RULES)


def apply_override(cfg: dict, path: list[str], value: Any, text: str | None = None) -> None:
    """Set ``cfg[path] = value`` (see :func:`config_syntax.apply_override`); ``text`` names it in errors."""
    config_syntax.apply_override(cfg, path, value, OVERRIDE_RULES, text)


def _is_list_patch(keys: list[str]) -> bool:
    """An override into an item of a list the predictor may take from the model (transform_ops)."""
    return any(len(keys) > len(p) and tuple(keys[: len(p)]) == p for p in PATCHABLE_LISTS)


def _get(cfg: Mapping, keys: Sequence[str]) -> Any:
    node: Any = cfg
    for k in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(k)
    return node


def load_config(path: str | None, overrides: Iterable[str] = ()) -> dict:
    """The deploy config at ``path`` (or an empty one) with ``-o`` overrides applied in order.

    An override into an item of ``PreProcess.transform_ops`` when the config has no such list
    (the shipped config leaves it to the model's ``inference.yml``) is kept under
    :data:`DEFERRED_KEY` and applied by the predictor to the list it uses.
    """
    cfg = load_yaml(path) if path else {}
    deferred: list[tuple[str, list[str], Any]] = []
    for text in overrides or ():
        keys, value = parse_override(text)
        if _is_list_patch(keys) and not isinstance(_get(cfg, keys[:2]), list):
            deferred.append((text, keys, value))
            continue
        if any(tuple(keys) == p[: len(keys)] for p in PATCHABLE_LISTS):
            deferred = [d for d in deferred if tuple(d[1][: len(keys)]) != tuple(keys)]  # replaced as a whole
        apply_override(cfg, keys, value, text)
    unknown = [k for k in cfg if k not in SECTIONS]
    if unknown:
        raise DeployConfigError(
            f"unknown section '{unknown[0]}' in {path or 'the overrides'}.{_suggest(unknown[0], SECTIONS)} "
            f"Valid sections: {', '.join(SECTIONS)}"
        )
    if deferred:
        cfg[DEFERRED_KEY] = deferred
    return cfg


def apply_deferred_overrides(cfg: Mapping, section: str, value: dict, source: str) -> dict:
    """``value`` (the resolved ``section``, e.g. PreProcess) with the deferred list overrides of ``cfg``
    applied; ``source`` (where the list came from) is named in errors."""
    wrapper = {section: copy.deepcopy(value)}
    for text, keys, val in cfg.get(DEFERRED_KEY) or ():
        if keys[0] != section:
            continue
        try:
            apply_override(wrapper, keys, val, text)
        except DeployConfigError as e:
            raise DeployConfigError(f"{e} (the list is from {source})") from None
    return wrapper[section]


def normalize_postprocess(post: Any, where: str) -> dict:
    """PaddleClas writes ``PostProcess`` two ways; return the ``{Name: {args}}`` form.

    Old: ``{name: Topk, topk: 5, class_id_map_file: ...}``; new: ``{main_indicator: Topk,
    Topk: {...}, SavePreLabel: {...}}``.
    """
    if post is None:
        return {}
    if not isinstance(post, Mapping):
        raise DeployConfigError(f"{where}: expected a mapping, got {short(post)}")
    post = copy.deepcopy(dict(post))
    if "name" in post:
        name = post.pop("name")
        out: dict = {"main_indicator": name, name: post}
        return out
    return {k: ({} if v is None and k != "main_indicator" else v) for k, v in post.items()}


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """``over`` merged into a copy of ``base``: mappings key by key, anything else replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_global(g: Mapping) -> dict:
    """Validate ``Global`` and fill the defaults; unknown keys and wrong types raise."""
    if not isinstance(g, Mapping):
        raise DeployConfigError(f"Global: expected a mapping, got {short(g)}")
    out: dict = {}
    for key, value in g.items():
        if key in MODEL_GLOBAL_KEYS and key not in GLOBAL_KEYS:
            out[key] = value
            continue
        if key not in GLOBAL_KEYS:
            raise DeployConfigError(
                f"unknown key Global.{key}.{_suggest(key, GLOBAL_KEYS)} Valid keys: {', '.join(sorted(GLOBAL_KEYS))}"
            )
        types, _ = GLOBAL_KEYS[key]
        if value is not None or type(None) in types:
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise DeployConfigError(f"Global.{key}: expected {names}, got {short(value)}")
        out[key] = value
    for key, (_, default) in GLOBAL_KEYS.items():
        if out.get(key) is None:
            out[key] = default
    if out["batch_size"] < 1:
        raise DeployConfigError(f"Global.batch_size: expected a positive integer, got {out['batch_size']}")
    for key in ("cpu_num_threads", "workers"):
        if out[key] < 1:
            raise DeployConfigError(f"Global.{key}: expected a positive integer, got {out[key]}")
    if not 0.0 <= float(out["max_bad_image_ratio"]) <= 1.0:
        raise DeployConfigError(
            f"Global.max_bad_image_ratio: expected a fraction in [0, 1], got {short(out['max_bad_image_ratio'])}")
    if out["use_onnx"]:  # PaddleClas's switch for the same thing
        out["backend"] = "onnxruntime"
    out["backend"] = str(out["backend"]).lower()
    if out["backend"] not in BACKENDS:
        raise DeployConfigError(
            f"Global.backend: expected one of {', '.join(BACKENDS)}, got {short(g.get('backend'))}"
        )
    _resolve_precision(g, out)
    imgs = out.get("infer_imgs")
    if isinstance(imgs, list) and not all(isinstance(x, str) for x in imgs):
        raise DeployConfigError(f"Global.infer_imgs: expected a file, a folder or a list of them, got {short(imgs)}")
    class_num = out.get("class_num")
    if class_num is not None and (isinstance(class_num, bool) or not isinstance(class_num, int) or class_num < 1):
        raise DeployConfigError(f"Global.class_num: expected a positive integer, got {short(class_num)}")
    shape = out.get("input_shape")
    if shape is not None and (len(shape) != 3 or not all(isinstance(v, int) and v > 0 for v in shape)):
        raise DeployConfigError(f"Global.input_shape: expected [C, H, W] of positive integers, got {short(shape)}")
    return out


def _resolve_precision(given: Mapping, out: dict) -> None:
    """``Global.precision`` and PaddleClas's ``use_fp16`` / ``use_int8`` made to agree, or refused.

    Which backend runs which precision is the backend's to say (deploy/python/backends/).
    """
    precision = given.get("precision")
    if precision is not None:
        precision = str(precision).lower()
        if precision not in PRECISIONS:
            raise DeployConfigError(
                f"Global.precision: expected one of {', '.join(PRECISIONS)}, got {short(given.get('precision'))}"
                f".{_suggest(precision, PRECISIONS)}")
    switches = [k for k in ("use_fp16", "use_int8") if out[k]]
    if len(switches) > 1:
        raise DeployConfigError("Global.use_fp16=True and Global.use_int8=True contradict each other: set one, or "
                                "Global.precision to fp16 or int8")
    for key in switches:
        implied = "fp16" if key == "use_fp16" else "int8"
        if precision is not None and precision != implied:
            raise DeployConfigError(
                f"Global.precision={precision} contradicts Global.{key}=True (which means precision {implied}): "
                f"set Global.{key}=False, or Global.precision={implied}")
        precision = implied
    out["precision"] = precision or "fp32"
    out["use_fp16"] = out["precision"] == "fp16"
    out["use_int8"] = out["precision"] == "int8"
