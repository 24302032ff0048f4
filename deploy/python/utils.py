"""Config loading, ``-o`` overrides, image listing and atomic writes for ``deploy/``.

This package stands alone (no ``ppcls`` import) so the ``deploy/`` folder can be copied to a
server together with an exported model folder.
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from .backends import BACKENDS as BACKEND_TABLE
from .backends.base import PRECISIONS
from .errors import DeployConfigError, DeployFileError, few, short

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

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


def _suggest(name: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


_FRACTION = re.compile(r"^\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*/\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*$")


def parse_number(value: Any, where: str = "value") -> float:
    """A float from a number, a numeric string or a fraction like ``1.0/255.0`` (never ``eval``)."""
    if isinstance(value, bool):
        raise DeployConfigError(f"{where}: expected a number, got the boolean {value}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _FRACTION.match(value)
        try:
            if match:
                return float(match.group(1)) / float(match.group(2))
            return float(value)
        except (ValueError, ZeroDivisionError):
            pass
    raise DeployConfigError(f"{where}: expected a number or a fraction like 1.0/255.0, got {short(value)}")


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


def parse_override(text: str) -> tuple[list[str], Any]:
    """``A.b.c=value`` → (["A", "b", "c"], value parsed with ``yaml.safe_load``)."""
    if "=" not in text:
        raise DeployConfigError(f"override '{text}' is not of the form Section.key=value")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise DeployConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_override(cfg: dict, path: list[str], value: Any, text: str | None = None) -> None:
    """Set ``cfg[path] = value``; list items are addressed by index or by op name.

    ``transform_ops.ResizeImage.resize_short`` (or ``transform_ops.1.resize_short``) sets one
    argument of an op; ``transform_ops.ResizeImage`` replaces that op's arguments;
    ``transform_ops.1`` replaces the whole item. ``text`` names the override in errors.
    """
    name = text or ".".join(path)
    node: Any = cfg
    for i, part in enumerate(path):
        last = i == len(path) - 1
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            idx = _list_index(node, part, where, name)
            by_name = not part.lstrip("-").isdigit()
            if isinstance(node[idx], str):  # `- ToCHWImage` written without arguments
                node[idx] = {node[idx]: None}
            if last:
                node[idx] = {part: value} if by_name else value
                return
            item = node[idx]
            if isinstance(item, dict) and len(item) == 1 and path[i + 1] not in item:
                op = next(iter(item))
                if item[op] is None:  # `- ResizeImage:` with no arguments yet
                    item[op] = {}
                node = item[op]  # `transform_ops.ResizeImage.resize_short` reaches into the op's arguments
                if not isinstance(node, dict):
                    raise DeployConfigError(f"override {name}: the arguments of {where} are {short(node)}, "
                                            "not a mapping of keys")
            else:
                node = item
            continue
        if not isinstance(node, dict):
            raise DeployConfigError(f"override {name}: {where} is not a section")
        if last:
            node[part] = value
            return
        if node.get(part) is None:
            if i == 0 and part not in SECTIONS:
                raise DeployConfigError(
                    f"override {name}: unknown section '{part}'.{_suggest(part, SECTIONS)} "
                    f"Valid sections: {', '.join(SECTIONS)}"
                )
            node[part] = {}
        node = node[part]


def _list_index(node: list, part: str, where: str, name: str) -> int:
    if part.lstrip("-").isdigit():
        idx = int(part)
        if not -len(node) <= idx < len(node):
            raise DeployConfigError(f"override {name}: {where}: index out of range (the list has {len(node)} items)")
        return idx
    for idx, item in enumerate(node):
        if (isinstance(item, dict) and part in item) or item == part:
            return idx
    names = [next(iter(x)) if isinstance(x, dict) else str(x) for x in node if x]
    raise DeployConfigError(
        f"override {name}: no item '{part}' in {where.rsplit('.', 1)[0]} ({few(names, 8)}).{_suggest(part, names)}"
    )


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


# ----------------------------------------------------------------------------- files


def list_images(path: str | list) -> list[str]:
    """An image file, a folder (searched recursively, sorted) or a list of either."""
    return [p for p, _ in list_named_images(path)]


def list_named_images(path: str | list, where: str = "Global.infer_imgs") -> list[tuple[str, str]]:
    """``(path, name)`` of every image :func:`list_images` finds; the name is the path relative to the
    folder given (``cat/001.jpg``: base names alone are ambiguous across class sub-folders), or the path
    as given for a file. ``tools/infer.py`` names its results the same way. ``where`` names the setting
    in messages."""
    if isinstance(path, (list, tuple)):
        return [pair for item in path for pair in list_named_images(item, where)]
    if os.path.isfile(path):
        return [(path, path)]
    if os.path.isdir(path):
        found, left_out = [], []
        for root, _, files in os.walk(path):
            for f in files:
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(os.path.join(root, f))
                elif not f.startswith("."):
                    left_out.append(os.path.relpath(os.path.join(root, f), path))
        if not found:
            raise DeployFileError(f"{where}: no images ({', '.join(IMAGE_EXTENSIONS)}) under {path}")
        if left_out:
            logger.warning(f"{where}: left out %d file(s) under %s whose extension is not an image type "
                           "read here (%s): %s", len(left_out), path, ", ".join(IMAGE_EXTENSIONS),
                           few(sorted(left_out)))
        return [(f, os.path.relpath(f, path)) for f in sorted(found)]
    raise DeployFileError(f"{where}: no such file or folder: {short(path)}")


def _file_mode(path: str) -> int:
    """The mode a replaced file keeps, or what a plain ``open()`` would give (mkstemp makes 0600)."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_copy(src: str, dst_dir: str) -> str:
    """Copy ``src`` into ``dst_dir`` under its own name, atomically; returns the new path."""
    import shutil

    os.makedirs(dst_dir, exist_ok=True)
    dst = os.path.join(dst_dir, os.path.basename(src))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(src)}.", dir=dst_dir)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, _file_mode(dst))
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return dst


def write_json_lines(path: str, rows: Iterable[Mapping]) -> None:
    atomic_write_text(path, "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in rows))
