"""The whole config: loaded with its ``-o`` overrides and ``Global.data_dir``, then validated.

Validation checks every section against the registries and the signature of what each key builds, so it
needs every package that registers entries: it sits at the engine level, above arch, data, loss,
optimizer and metric. Reading YAML, ``-o`` overrides and the generic key checks it uses stay at the
bottom, in :mod:`ppcls.utils.config`, where the builders import them.

The schema is PaddleClas's (Global / Arch / Loss / Optimizer / DataLoader / Infer / Metric,
optional AMP / EMA).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ppcls import registry as R
from ppcls.arch import WRAPPER_KEYS, model_arguments, model_class
from ppcls.data.data_dir import apply_data_dir, read_data_dir
from ppcls.data.prepare import PREPARERS
from ppcls.data.sampler import SAMPLERS
from ppcls.optimizer.finetune import finetune_settings
from ppcls.optimizer.lr import LR_WRAPPER_KEYS
from ppcls.registry import MODELS
from ppcls.registry_imports import REGISTERING_MODULES  # noqa: F401  (every registry complete before a lookup)
from ppcls.utils.config import (
    SECTIONS,
    _name,
    _suggest,
    apply_override,
    check_keys,
    check_kwargs,
    check_size,
    load_yaml,
    op_list,
    parse_override,
)
from ppcls.utils.errors import ConfigError, UnknownNameError, summarize

logger = logging.getLogger(__name__)

__all__ = ["load_config", "validate_config"]

# key -> accepted Python types (None means "any"); documented in docs/configs.md.
NUM = (int, float)
OPT_STR = (str, type(None))
GLOBAL_KEYS: dict[str, tuple | None] = {
    "checkpoints": OPT_STR,
    "pretrained_model": OPT_STR,
    "output_dir": (str,),
    "device": (str,),
    "save_interval": (int,),
    "eval_during_train": (bool,),
    "eval_interval": (int,),
    "start_eval_epoch": (int,),
    "epochs": (int,),
    "print_batch_step": (int,),
    "use_visualdl": (bool,),
    "image_shape": (list,),
    "save_inference_dir": (str,),
    "seed": (int, type(None)),
    "to_static": (bool,),
    "use_dali": (bool,),
    "eval_mode": (str,),
    "class_num": (int,),
    "accum_steps": (int,),
    "update_freq": (int,),
    "early_stop": (dict, type(None)),
    "save_plots": (bool,),
    "export_type": (str,),
    "infer_add_softmax": (bool,),
    "num_threads": (int, type(None)),
    "use_mkldnn": (bool,),
    "resume_policy": (str,),
    "max_bad_image_ratio": NUM,
    "max_iters_per_epoch": (int, type(None)),
    "data_dir": OPT_STR,
    "class_num_from_data": (bool,),
    "finetune": (dict, type(None)),
}
AMP_KEYS: dict[str, tuple | None] = {
    "use_amp": (bool,),
    "use_fp16_test": (bool,),
    "scale_loss": NUM,
    "use_dynamic_loss_scaling": (bool,),
    "use_promote": (bool,),
    "level": (str,),
    "dtype": (str,),
}
EMA_KEYS: dict[str, tuple | None] = {"decay": NUM}
# Sections PaddleClas has for features this framework does not have: refused with what to do instead.
UNSUPPORTED_SECTIONS = {
    "Slim": "quantization and pruning (PaddleClas's Slim) are not supported here: tools/export_model.py "
            "exports the float32 model with BatchNorm folded; remove the section",
    "Distillation": "knowledge distillation is not supported here: train the model alone (PaddleClas's "
                    "SSLD-distilled PP-LCNet weights load with Arch.pretrained: True and Arch.use_ssld: True); "
                    "remove the section",
    "Export": "the export settings are Global.save_inference_dir, Global.image_shape, Global.export_type "
              "(paddle or onnx), Global.infer_add_softmax and Infer.transforms; remove the section",
}
SPLITS = ("Train", "Eval")
# PaddleClas keys that describe what this framework always does: accepted with that value only.
PINNED_KEYS: dict[tuple[str, str], tuple[Any, str]] = {
    ("Global", "use_dali"): (
        False, "DALI is not supported: images are read by Paddle's DataLoader workers "
               "(DataLoader.<split>.loader.num_workers); remove the key or set it to False"),
    ("Global", "eval_mode"): (
        "classification", "only classification is evaluated here (PaddleClas's retrieval and "
                          "adaface modes are not supported); remove the key or set it to classification"),
    ("AMP", "use_fp16_test"): (
        False, "evaluation always runs in float32 here; AMP applies to training only. Remove the key or set "
               "it to False"),
}
# PaddleClas keys that the launcher, not the config, decides: refused with where the setting lives.
REFUSED_KEYS: dict[tuple[str, str], str] = {
    ("Global", "distributed"): (
        "not read: the number of training processes comes from the launcher (python -m "
        "paddle.distributed.launch --nproc_per_node N tools/train.py ...; docs/distributed.md); remove the key"),
}


def _apply_overrides(cfg: dict, overrides: list[tuple[list[str], Any]]) -> dict:
    for keys, value in overrides:
        apply_override(cfg, keys, value)
    return cfg


def load_config(path: str, overrides: Iterable[str] = (), validate: bool = True) -> dict:
    """Read ``path``, apply ``-o`` overrides in order, validate, and return the merged dict."""
    overrides = [parse_override(text) for text in overrides or ()]
    cfg = _apply_overrides(load_yaml(path), overrides)
    data_dir = cfg.get("Global", {}).get("data_dir") if isinstance(cfg.get("Global"), dict) else None
    if isinstance(data_dir, str) and data_dir:
        # the folder's paths go between the recipe and the -o overrides: an explicit
        # -o DataLoader.Eval.dataset.cls_label_path=... still wins over Global.data_dir
        cfg = load_yaml(path)
        apply_data_dir(cfg, read_data_dir(data_dir))
        cfg = _apply_overrides(cfg, overrides)
    if overrides:
        check_size(cfg, f"{path} with its -o overrides")
    if validate:
        validate_config(cfg, source=path)
    return cfg


def _check_registry_ops(
    where: str, ops: Any, registry, injected: Iterable[str] = (), extra: Iterable[str] = ()
) -> None:
    for i, (name, args) in enumerate(op_list(where, ops)):
        if not isinstance(name, str) or name not in registry:
            raise UnknownNameError(f"{where}[{i}]: {registry.unknown_message(name)}")
        check_kwargs(f"{where}[{i}].{name}", registry.get(name), args, extra=extra, injected=injected)


def validate_config(cfg: Mapping, source: str = "config") -> None:
    """Raise :class:`ConfigError` naming the first bad section, key or value.

    Also completes the config as PaddleClas does: ``Global.class_num`` gives ``Arch.class_num``
    when that is absent.
    """
    for section in cfg:
        if section in UNSUPPORTED_SECTIONS:
            raise ConfigError(f"{section}: section not supported ({source}): {UNSUPPORTED_SECTIONS[section]}")
        if section not in SECTIONS:
            raise UnknownNameError(
                f"{_name(section)}: unknown section ({source}).{_suggest(str(section), SECTIONS)} "
                f"Valid sections: {', '.join(SECTIONS)}"
            )
    for required in ("Global", "Arch"):
        if not isinstance(cfg.get(required), dict):
            raise ConfigError(f"{required}: section missing or not a mapping ({source})")
    _check_compat_keys(cfg)
    check_keys("Global", cfg["Global"], GLOBAL_KEYS)
    if cfg.get("AMP") is not None:
        check_keys("AMP", cfg["AMP"], AMP_KEYS)
    if cfg.get("EMA") is not None:
        check_keys("EMA", cfg["EMA"], EMA_KEYS)
    _global_class_num(cfg["Global"], cfg["Arch"])
    _validate_image_shape(cfg["Global"])
    finetune_settings(cfg["Global"])
    _validate_arch(cfg["Arch"])
    _validate_loss(cfg.get("Loss"), R)
    _validate_optimizer(cfg.get("Optimizer"), R)
    _validate_dataloader(cfg.get("DataLoader"), R)
    _validate_infer(cfg.get("Infer"), R)
    for split in ("Train", "Eval"):
        metrics = (cfg.get("Metric") or {}).get(split)
        _check_registry_ops(f"Metric.{split}", metrics, R.METRICS, injected=("class_num",))
    if cfg.get("Metric"):
        check_keys("Metric", cfg["Metric"], {"Train": None, "Eval": None})


def _check_compat_keys(cfg: Mapping) -> None:
    """PaddleClas keys that are honoured only with one value, or not at all, say so."""
    for (section, key), (value, why) in PINNED_KEYS.items():
        part = cfg.get(section)
        if isinstance(part, Mapping) and key in part and part[key] != value:
            raise ConfigError(f"{section}.{key}: {summarize(part[key])} is not supported: {why}")
    for (section, key), why in REFUSED_KEYS.items():
        part = cfg.get(section)
        if isinstance(part, Mapping) and key in part:
            raise ConfigError(f"{section}.{key}: {why}")
    g = cfg["Global"]
    if "accum_steps" in g and "update_freq" in g and g["accum_steps"] != g["update_freq"]:
        raise ConfigError(
            f"Global.update_freq: {summarize(g['update_freq'])} differs from Global.accum_steps: "
            f"{summarize(g['accum_steps'])}; they are one setting (update_freq is PaddleClas's name), give it once"
        )
    opt, amp = cfg.get("Optimizer"), cfg.get("AMP")
    if isinstance(opt, Mapping) and opt.get("multi_precision") is False and isinstance(amp, Mapping) \
            and amp.get("use_amp", True) and str(amp.get("level", "O1")).upper() == "O2":
        raise ConfigError(
            "Optimizer.multi_precision: False is not supported with AMP.level O2: the optimizer here always keeps "
            "float32 master weights under O2 (as Paddle's amp.decorate does); remove the key or set it to True"
        )


def _global_class_num(g: dict, arch: dict) -> None:
    """PaddleClas's older ``Global.class_num``: used for ``Arch.class_num`` when that is absent."""
    if g.get("class_num") is None:
        return
    value = g["class_num"]
    if value < 1:
        raise ConfigError(f"Global.class_num: expected a positive integer, got {summarize(value)}")
    if "class_num" not in arch:
        arch["class_num"] = value
        logger.info("Arch.class_num set to %d from Global.class_num (PaddleClas's older place for it)", value)
    elif arch["class_num"] != value:
        raise ConfigError(
            f"Global.class_num: {summarize(value)} differs from Arch.class_num: {summarize(arch['class_num'])}; "
            "the model is built with Arch.class_num. Give the class count once, in Arch.class_num, or make the "
            "two equal"
        )


def _validate_image_shape(g: Mapping) -> None:
    """``Global.image_shape`` is the exported model's input, [C, H, W]; refused here, before a training run
    whose result could not be exported, rather than at export."""
    if "image_shape" not in g:
        return
    shape = g["image_shape"]
    ok = (isinstance(shape, list) and len(shape) == 3
          and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape))
    if not ok:
        raise ConfigError(
            f"Global.image_shape: expected three positive integers [C, H, W] (e.g. [3, 224, 224]), "
            f"got {summarize(shape)}"
        )
    if shape[0] != 3:
        raise ConfigError(
            f"Global.image_shape: the channel count C must be 3 (every model here takes RGB images; "
            f"grayscale images are decoded to 3 channels), got {summarize(shape)}"
        )


def _validate_arch(arch: Mapping) -> None:
    name = arch.get("name")
    if name is None:
        raise ConfigError("Arch.name: missing; name a registered model, e.g. PPLCNet_x1_0")
    if not isinstance(name, str) or name not in MODELS:
        raise UnknownNameError(f"Arch.name: {MODELS.unknown_message(name)}")
    allowed = model_arguments(name)
    if allowed is not None:
        cls = model_class(name)
        check_kwargs(f"Arch({name})", cls if cls is not None else MODELS.get(name),
                     {k: v for k, v in arch.items() if k not in ("name",)},
                     extra=WRAPPER_KEYS)
    pretrained = arch.get("pretrained")
    if pretrained is not None and not isinstance(pretrained, (bool, str)):
        raise ConfigError(
            "Arch.pretrained: expected True (the published weights), False, or a path or URL, got "
            f"{summarize(pretrained)}"
        )
    use_ssld = arch.get("use_ssld", False)
    if not isinstance(use_ssld, bool):
        raise ConfigError(f"Arch.use_ssld: expected True or False, got {summarize(use_ssld)}")
    if use_ssld and pretrained is not True:
        raise ConfigError(
            "Arch.use_ssld: True selects PaddleClas's SSLD weights for Arch.pretrained: True; "
            f"with Arch.pretrained: {summarize(pretrained)} it would do nothing (remove it or set pretrained: True)"
        )
    class_num = arch.get("class_num", 1000)
    if not isinstance(class_num, int) or isinstance(class_num, bool) or class_num < 1:
        raise ConfigError(f"Arch.class_num: expected a positive integer, got {summarize(class_num)}")


def _validate_loss(loss: Any, R) -> None:
    if loss is None:
        return
    check_keys("Loss", loss, {"Train": None, "Eval": None})
    for split, ops in loss.items():
        _check_registry_ops(f"Loss.{split}", ops, R.LOSSES, injected=("class_num",), extra=("weight",))


OPTIMIZER_COMMON = ("name", "lr", "regularizer", "clip_norm", "no_weight_decay_name",
                    "one_dim_param_no_weight_decay", "multi_precision", "weight_decay", "backbone_lr_mult")


def _validate_optimizer(opt: Any, R) -> None:
    if opt is None:
        return
    if not isinstance(opt, Mapping) or "name" not in opt:
        raise ConfigError("Optimizer: expected a mapping with a 'name' (Momentum, SGD, Adam, AdamW, RMSProp)")
    if not isinstance(opt["name"], str) or opt["name"] not in R.OPTIMIZERS:
        raise UnknownNameError(f"Optimizer.name: {R.OPTIMIZERS.unknown_message(opt['name'])}")
    check_kwargs(
        f"Optimizer({opt['name']})",
        R.OPTIMIZERS.get(opt["name"]),
        {k: v for k, v in opt.items() if k not in OPTIMIZER_COMMON},
        injected=("parameters", "learning_rate", "weight_decay", "grad_clip"),
    )
    reg = opt.get("regularizer")
    if reg is not None:
        check_keys("Optimizer.regularizer", reg, {"name": (str,), "coeff": NUM})
        if str(reg.get("name", "L2")).upper() not in ("L2", "L2DECAY"):
            raise ConfigError(f"Optimizer.regularizer.name: only L2 is supported, got {summarize(reg.get('name'))}")
    lr = opt.get("lr")
    if lr is None:
        raise ConfigError("Optimizer.lr: missing; give at least lr.name and lr.learning_rate")
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        return
    if not isinstance(lr, Mapping) or "name" not in lr:
        raise ConfigError(f"Optimizer.lr: expected a number or a mapping with a name, got {summarize(lr)}")
    if not isinstance(lr["name"], str) or lr["name"] not in R.LRS:
        raise UnknownNameError(f"Optimizer.lr.name: {R.LRS.unknown_message(lr['name'])}")
    check_kwargs(f"Optimizer.lr({lr['name']})", R.LRS.get(lr["name"]),
                 {k: v for k, v in lr.items() if k != "name"},
                 extra=LR_WRAPPER_KEYS, injected=("epochs", "step_each_epoch"))


LOADER_KEYS = {"num_workers": (int,), "use_shared_memory": (bool,), "persistent_workers": (bool,),
               "prefetch_factor": (int,)}


def _validate_dataloader(dl: Any, R) -> None:
    if dl is None:
        return
    if isinstance(dl, Mapping) and "Test" in dl:
        raise ConfigError(
            "DataLoader.Test: not read by any tool here: training and tools/eval.py evaluate DataLoader.Eval, "
            "tools/infer.py reads Infer.infer_imgs; move the data set to DataLoader.Eval or remove the section"
        )
    check_keys("DataLoader", dl, {"Train": None, "Eval": None, "prepare": None})
    if dl.get("prepare") is not None:
        prep = dl["prepare"]
        if not isinstance(prep, Mapping) or prep.get("name") not in PREPARERS:
            raise UnknownNameError(
                f"DataLoader.prepare.name: expected one of {', '.join(sorted(PREPARERS))}, got "
                f"{summarize((prep or {}).get('name') if isinstance(prep, Mapping) else prep)}"
            )
        check_kwargs("DataLoader.prepare", PREPARERS.get(prep["name"]),
                     {k: v for k, v in prep.items() if k != "name"})
    for split in SPLITS:
        part = dl.get(split)
        if part is None:
            continue
        where = f"DataLoader.{split}"
        check_keys(where, part, {"dataset": (dict,), "sampler": (dict,), "loader": (dict,)})
        ds = part.get("dataset")
        if ds is None or "name" not in ds:
            raise ConfigError(f"{where}.dataset.name: missing (e.g. ImageNetDataset)")
        if not isinstance(ds["name"], str) or ds["name"] not in R.DATASETS:
            raise UnknownNameError(f"{where}.dataset.name: {R.DATASETS.unknown_message(ds['name'])}")
        args = {k: v for k, v in ds.items() if k not in ("name", "batch_transform_ops")}
        check_kwargs(f"{where}.dataset({ds['name']})", R.DATASETS.get(ds["name"]), args,
                     injected=("class_num",))
        _check_registry_ops(f"{where}.dataset.transform_ops", ds.get("transform_ops"), R.TRANSFORMS)
        _check_registry_ops(f"{where}.dataset.batch_transform_ops", ds.get("batch_transform_ops"),
                            R.BATCH_TRANSFORMS, injected=("class_num",))
        sampler = part.get("sampler") or {}
        sname = sampler.get("name", "DistributedBatchSampler")
        if not isinstance(sname, str) or sname not in SAMPLERS:
            raise UnknownNameError(f"{where}.sampler.name: {SAMPLERS.unknown_message(sname)}")
        check_kwargs(f"{where}.sampler({sname})", SAMPLERS.get(sname),
                     {k: v for k, v in sampler.items() if k != "name"},
                     injected=("dataset", "num_replicas", "rank", "seed"))
        check_keys(f"{where}.loader", part.get("loader") or {}, LOADER_KEYS)


def _validate_infer(infer: Any, R) -> None:
    if infer is None:
        return
    check_keys("Infer", infer, {"infer_imgs": (str, list), "batch_size": (int,),
                                "transforms": (list,), "PostProcess": (dict,)})
    _check_registry_ops("Infer.transforms", infer.get("transforms"), R.TRANSFORMS)
    post = infer.get("PostProcess")
    if post is not None:
        name = post.get("name")
        if not isinstance(name, str) or name not in R.POSTPROCESS:
            raise UnknownNameError(f"Infer.PostProcess.name: {R.POSTPROCESS.unknown_message(name)}")
        check_kwargs(f"Infer.PostProcess({name})", R.POSTPROCESS.get(name),
                     {k: v for k, v in post.items() if k != "name"}, injected=("class_num",))
