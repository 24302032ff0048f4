"""What the tools run: assemble built objects from a validated config and call them.

Each function reads its sections and hands explicit arguments to the builders; nothing
below this level reads the config.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import paddle

from ppcls.arch import build_model
from ppcls.arch.pretrained import resolve_weights
from ppcls.arch.weights import identify
from ppcls.data import build_dataloader
from ppcls.data.data_dir import dataset_class_names
from ppcls.data.label_list import check_label_list, read_label_list, write_label_list
from ppcls.data.prepare import prepare_dataset
from ppcls.data.transforms import build_transforms
from ppcls.loss import build_loss
from ppcls.metric import build_metrics
from ppcls.optimizer import build_lr, build_optimizer
from ppcls.optimizer.finetune import adapt_for_finetuning
from ppcls.registry import POSTPROCESS
from ppcls.utils import dist
from ppcls.utils.config import dump_config
from ppcls.utils.errors import ConfigError, PathExistsError, summarize
from ppcls.utils.io import ensure_writable_dir
from ppcls.utils.logger import FILE_ONLY, add_log_file

from .amp import build_amp
from .callbacks import Callback, EarlyStopper, HeadOnlyEpochs, StopRequest, install_stop_handlers
from .checkpoint import Checkpointer, load_checkpoint
from .device import set_seed, setup_device
from .ema import ModelEMA
from .evaluate import evaluate
from .export import export_model
from .infer import check_bad_images, list_named_images, predict_files
from .trainer import (
    Evaluation,
    Hooks,
    Models,
    Optimization,
    TrainData,
    Trainer,
    TrainerOptions,
    TrainState,
    restore_run,
)
from .visual import PlotCallback, VisualDLCallback, evaluate_with_plots, resolve_class_names

logger = logging.getLogger(__name__)


def run_dir(cfg: Mapping) -> str:
    """``output_dir/<Arch.name>``; with ``Global.data_dir``, ``output_dir/<data folder name>/<Arch.name>``."""
    g = cfg["Global"]
    parts = [g.get("output_dir", "./output")]
    if g.get("data_dir"):
        parts.append(os.path.basename(os.path.normpath(str(g["data_dir"]))) or "data")
    return os.path.join(*parts, cfg["Arch"]["name"])


def _setup(cfg: dict) -> str:
    """Device (``auto`` resolved and written back, so AMP and the log see the real one), processes, seed."""
    g = cfg["Global"]
    device = setup_device(g.get("device", "auto"), g.get("num_threads"), g.get("use_mkldnn"))
    g["device"] = device.split(":")[0] if g.get("device", "auto") in (None, "auto") else g["device"]
    dist.init_parallel()
    set_seed(g.get("seed"))
    return device


def _data_classes(cfg: dict, from_train_data: bool) -> list[str] | None:
    """The class names ``DataLoader.Train`` defines, with ``Arch.class_num`` made to agree.

    ``Global.data_dir`` was applied when the config was loaded. ``from_train_data``: read them when no
    data folder is given too (training); evaluating and predicting take them from the weights then.
    """
    if not cfg["Global"].get("data_dir") and not from_train_data:
        return None
    ds = ((cfg.get("DataLoader") or {}).get("Train") or {}).get("dataset")
    names, source = dataset_class_names(ds, "DataLoader.Train.dataset") if isinstance(ds, dict) else (None, None)
    if names:
        _agree_class_num(cfg, len(names), source)
    return names


def _agree_class_num(cfg: dict, count: int, source: str) -> None:
    """``Arch.class_num`` from the data: a recipe's other value is replaced (warning naming both) unless
    ``Global.class_num_from_data`` is False."""
    arch, g = cfg["Arch"], cfg["Global"]
    have = arch.get("class_num")
    if have == count:
        return
    if have is None:
        arch["class_num"] = count
        logger.info("Arch.class_num: %d, the classes of %s", count, source)
        return
    if g.get("class_num_from_data", True):
        logger.warning("Arch.class_num is %d in the config, but %s names %d classes: the model gets %d classes "
                       "(-o Global.class_num_from_data=False keeps %d)", have, source, count, count, have)
        arch["class_num"] = count
        g.pop("class_num", None)  # PaddleClas's older copy of it
        return
    if have < count:
        raise ConfigError(f"Arch.class_num: {have} is kept (Global.class_num_from_data=False), but {source} names "
                          f"{count} classes; a model needs at least one output per class")
    logger.warning("Arch.class_num: %d kept (Global.class_num_from_data=False); %s names %d classes",
                   have, source, count)


def _prepare_data(cfg: Mapping) -> None:
    prep = (cfg.get("DataLoader") or {}).get("prepare")
    if prep:
        if dist.is_main():
            prepare_dataset(prep)
        dist.barrier()


def _class_num(cfg: Mapping) -> int:
    return int(cfg["Arch"].get("class_num", 1000))


RESUME_POLICIES = ("refuse", "resume", "overwrite", "new")


def _check_run_folder(cfg: Mapping, folder: str) -> str:
    """The folder of this run: never mixed into one holding another run's checkpoints.

    ``Global.resume_policy`` decides when ``folder`` holds one: ``refuse`` (the default), ``resume``,
    ``overwrite`` (the old run moved aside) or ``new`` (the default with ``Global.data_dir``: the
    next free ``folder-2``, ``folder-3``, ...).
    """
    g = cfg["Global"]
    policy = g.get("resume_policy") or ("new" if g.get("data_dir") else "refuse")
    if policy not in RESUME_POLICIES:
        raise ConfigError(f"Global.resume_policy: expected {', '.join(RESUME_POLICIES)}, got {summarize(policy)}")
    latest = os.path.join(folder, "latest.pdparams")
    if g.get("checkpoints") or not os.path.isfile(latest):
        return folder
    if policy == "new":
        n = 2
        while os.path.exists(f"{folder}-{n}"):
            n += 1
        logger.info("%s holds an earlier run: this run goes to %s-%d (Global.resume_policy=resume continues "
                    "the earlier one instead)", folder, folder, n)
        return f"{folder}-{n}"
    if policy == "resume":
        g["checkpoints"] = os.path.join(folder, "latest")
        logger.info("Global.resume_policy=resume: continuing the run in %s", folder)
        return folder
    if policy == "overwrite":
        if dist.is_main():
            moved = f"{folder.rstrip(os.sep)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
            os.replace(folder, moved)
            logger.warning("Global.resume_policy=overwrite: moved the earlier run to %s", moved)
        dist.barrier()
        return folder
    raise PathExistsError(
        f"{folder} already holds the checkpoints of an earlier run (latest.pdparams). To continue it pass "
        f"-o Global.checkpoints={os.path.join(folder, 'latest')} (or -o Global.resume_policy=resume); to "
        "start over pass -o Global.resume_policy=overwrite (the old run is moved aside, not deleted); "
        "or choose another Global.output_dir"
    )


def train(cfg: dict, stop: StopRequest | None = None) -> TrainState:
    """``tools/train.py``: train, evaluate every ``eval_interval`` epochs, checkpoint.

    ``stop``: the request the tool's SIGTERM/SIGINT handlers set (installed before Paddle was
    imported); without one, handlers are installed here.
    """
    stop = install_stop_handlers(stop)
    _setup(cfg)
    if dist.world_size() == 1:  # several ranks decide together, at the start of fit()
        stop.check_start_up()
    folder = _check_run_folder(cfg, run_dir(cfg))
    dist.barrier()  # every rank chose the folder before the main one creates it (policy "new" looks for a free one)
    if dist.is_main():
        ensure_writable_dir(folder, "Global.output_dir")
        add_log_file(os.path.join(folder, "train.log"))
    logger.info("config:\n%s", dump_config(cfg), extra=FILE_ONLY)  # the screen keeps errors in sight
    trainer = build_training(cfg, folder, stop=stop)
    result = trainer.fit()
    if dist.world_size() > 1:
        same, sums = dist.replicas_identical(trainer.models.plain)
        (logger.info if same else logger.error)(
            "weights %s on all %d ranks (checksums %s)", "identical" if same else "DIFFER",
            dist.world_size(), ", ".join(f"{v:.10g}" for v in sums))
    logger.info("training done: best top1 %.5f at epoch %d; checkpoints in %s", result.best_metric,
                result.best_epoch, folder)
    return result


def build_training(cfg: dict, folder: str, save: bool = True, stop: StopRequest | None = None) -> Trainer:
    """Every object a training run needs, assembled into a :class:`Trainer` (not started)."""
    g = cfg["Global"]
    _prepare_data(cfg)
    class_names = _data_classes(cfg, from_train_data=True)
    finetune = adapt_for_finetuning(cfg)
    class_num = _class_num(cfg)
    options = _trainer_options(g)

    net = build_model(cfg["Arch"], weights=g.get("pretrained_model"))
    net.class_names = class_names  # saved with every checkpoint: infer and export name the classes
    dl = cfg["DataLoader"]
    train_loader = build_dataloader(dl["Train"], "Train", class_num, g.get("seed"))
    eval_loader = None
    if g.get("eval_during_train", True) and dl.get("Eval"):
        eval_loader = build_dataloader(dl["Eval"], "Eval", class_num, g.get("seed"))
    _write_label_list(train_loader.dataset, folder)
    max_iters = options.max_iters_per_epoch
    steps_per_epoch = min(len(train_loader), max_iters) if max_iters else len(train_loader)  # the LR steps per iteration
    if max_iters:
        # the sampler yields only these batches: the loader's prefetch thread then draws no augmentation
        # for batches that are never used, concurrently with the next epoch's
        train_loader.batch_sampler.max_batches = steps_per_epoch
    batch = train_loader.batch_sampler.batch_size * dist.world_size() * options.accum_steps
    lr = build_lr(cfg["Optimizer"]["lr"], options.epochs, steps_per_epoch, batch)
    optimizer = build_optimizer(cfg["Optimizer"], net, lr)
    loss_fn = build_loss(cfg["Loss"]["Train"], class_num)
    eval_loss = build_loss((cfg.get("Loss") or {}).get("Eval"), class_num)
    metrics = build_metrics((cfg.get("Metric") or {}).get("Train"), class_num)
    eval_metrics = build_metrics((cfg.get("Metric") or {}).get("Eval") or [{"TopkAcc": {"topk": [1, 5]}}], class_num)
    early = _build_early_stopper(g.get("early_stop"))
    ema = ModelEMA(net, cfg["EMA"].get("decay", 0.9999)) if cfg.get("EMA") else None
    state = TrainState()
    if g.get("checkpoints"):
        state = restore_run(load_checkpoint(str(g["checkpoints"])), net, optimizer, ema, early)
        logger.info("resumed from %s: epoch %d done, continuing at epoch %d", g["checkpoints"], state.epoch,
                    state.epoch + 1)

    wrapped, grad_sync = dist.wrap_for_training(net, bool(g.get("to_static")))
    evaluator = None
    if eval_loader is not None:
        def evaluator(epoch: int) -> dict[str, float]:
            return evaluate(wrapped, eval_loader, eval_loss, eval_metrics, epoch, options.print_batch_step,
                            max_bad_image_ratio=options.max_bad_image_ratio)

    scaler, amp_context = build_amp(cfg.get("AMP"), g.get("device", "cpu"), optimizer, net)
    callbacks = build_callbacks(cfg, folder, eval_loader, net) if save else []
    if finetune is not None and finetune.head_only_epochs:
        callbacks.append(HeadOnlyEpochs(net, finetune.head_only_epochs))  # after the optimizer set the LR multipliers
    lr_cfg = cfg["Optimizer"]["lr"]
    return Trainer(
        Models(wrapped=wrapped, plain=net, ema=ema),
        TrainData(train_loader, bad_image_paths=lambda idx: [train_loader.dataset.paths[int(i)] for i in idx]),
        Optimization(loss_fn, optimizer, lr,
                     lr_name=str(lr_cfg.get("name", "lr")) if isinstance(lr_cfg, Mapping) else "Constant",
                     scaler=scaler, amp_context=amp_context, grad_sync=grad_sync),
        Evaluation(train_metrics=metrics, evaluator=evaluator, ema_evaluator=evaluator if ema is not None else None,
                   early_stopper=early),
        options,
        Checkpointer(folder, enabled=dist.is_main() and save),
        Hooks(callbacks, stop or StopRequest()),
        state=state,
    )


def _trainer_options(g: Mapping) -> TrainerOptions:
    """The trainer's options from the ``Global`` section."""
    print_step = int(g.get("print_batch_step", 10))
    max_iters, seed = g.get("max_iters_per_epoch"), g.get("seed")
    return TrainerOptions(
        epochs=int(g.get("epochs", 1)), print_batch_step=print_step, eval_interval=int(g.get("eval_interval", 1)),
        start_eval_epoch=int(g.get("start_eval_epoch", 1)), save_interval=int(g.get("save_interval", 1)),
        accum_steps=int(g.get("accum_steps", g.get("update_freq", 1)) or 1),
        max_bad_image_ratio=float(g.get("max_bad_image_ratio", 0.01)),
        max_iters_per_epoch=int(max_iters) if max_iters else None,
        nan_check_every=1 if paddle.get_device() == "cpu" else print_step,
        seed=int(seed) if seed is not None else None,
    )


def _build_early_stopper(cfg: Any) -> EarlyStopper | None:
    if not cfg:
        return None
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"Global.early_stop: expected a mapping with patience/min_delta, got {summarize(cfg)}")
    allowed = {"patience", "min_delta", "monitor", "mode"}
    unknown = set(cfg) - allowed
    if unknown:
        raise ConfigError(f"Global.early_stop.{sorted(unknown, key=str)[0]}: unknown key; valid: {', '.join(sorted(allowed))}")
    return EarlyStopper(**cfg)


def build_callbacks(cfg: Mapping, folder: str, eval_loader: Any, net: paddle.nn.Layer) -> list[Callback]:
    """Rank 0's callbacks: ``Global.use_visualdl`` (scalars in ``{output_dir}/vdl``) and ``Global.save_plots``.

    The plots go to ``folder``; with an eval loader, the confusion matrix runs ``net`` (the plain
    model) over the eval set after training, naming the classes as the eval data or
    ``Infer.PostProcess.class_id_map_file`` do.
    """
    g = cfg["Global"]
    if not dist.is_main():
        return []
    callbacks: list[Callback] = []
    if g.get("use_visualdl"):
        callbacks.append(VisualDLCallback(os.path.join(g.get("output_dir", "./output"), "vdl")))
    if g.get("save_plots"):
        names = None
        if eval_loader is not None:
            label_file = ((cfg.get("Infer") or {}).get("PostProcess") or {}).get("class_id_map_file")
            names = resolve_class_names(_class_num(cfg), eval_loader.dataset, label_file)
        callbacks.append(PlotCallback(folder, eval_loader=eval_loader, model=net, class_names=names,
                                      num_classes=_class_num(cfg)))
    return callbacks


def _write_label_list(dataset: Any, folder: str) -> None:
    names = getattr(dataset, "class_names", None)
    if names and dist.is_main():
        write_label_list(os.path.join(folder, "label_list.txt"), names)


def _latest_run_weights(cfg: Mapping) -> str | None:
    """``best_model`` of the newest run of this model on ``Global.data_dir`` (``folder``, ``folder-2``, ...)."""
    base = run_dir(cfg)
    parent, stem = os.path.split(base)
    if not os.path.isdir(parent):
        return None
    runs = [os.path.join(parent, d) for d in os.listdir(parent)
            if d == stem or (d.startswith(stem + "-") and d[len(stem) + 1:].isdigit())]
    found = [os.path.join(r, "best_model") for r in runs if os.path.isfile(os.path.join(r, "best_model.pdparams"))]
    return max(found, key=lambda f: os.path.getmtime(f + ".pdparams")) if found else None


def _load_weights_for_use(cfg: dict) -> paddle.nn.Layer:
    """The model of ``Global.pretrained_model`` for eval, infer and export; its classifier must fit.

    With ``Global.data_dir`` and no ``pretrained_model``: the newest run's ``best_model`` (logged). A
    checkpoint that records its class count sets ``Arch.class_num`` (a recipe's other value: warning).
    """
    g, arch = cfg["Global"], cfg["Arch"]
    path = g.get("pretrained_model")
    if not path and g.get("data_dir"):
        path = _latest_run_weights(cfg)
        if path is None:
            raise ConfigError(f"Global.pretrained_model is not set and {run_dir(cfg)} holds no best_model.pdparams "
                              "of a training run on Global.data_dir: train first, or pass -o Global.pretrained_model=...")
        logger.info("Global.pretrained_model: %s (the newest run of %s on Global.data_dir)", path, arch["name"])
        g["pretrained_model"] = path
    if not path:
        raise ConfigError("Global.pretrained_model is not set: pass -o Global.pretrained_model=output/<Arch.name>/best_model")
    source = identify(resolve_weights(str(path)), arch["name"])
    saved = source.class_num
    if saved is not None and saved != arch.get("class_num", 1000):
        if g.get("data_dir"):
            raise ConfigError(f"Global.pretrained_model: {source.path} was trained for {saved} classes, but "
                              f"Global.data_dir names {arch.get('class_num')}; pass the weights of a run on this data")
        logger.warning("Arch.class_num is %s in the config, but %s was trained for %d classes: using %d",
                       arch.get("class_num", 1000), source.path, saved, saved)
        arch["class_num"] = saved
    model = build_model(arch, weights=source, head_must_fit=True)
    model.eval()
    return model


def _class_names_for_use(cfg: Mapping, model: paddle.nn.Layer, data_names: list[str] | None) -> list[str] | None:
    """Names of the model's classes: ``Infer.PostProcess.class_id_map_file`` when it names exactly the model's
    classes, else those of ``Global.data_dir``, else those saved with the weights (a label list that does not fit
    is then replaced, with a warning, or refused when nothing else names the classes)."""
    key = "Infer.PostProcess.class_id_map_file"
    class_num = _class_num(cfg)
    label_file = ((cfg.get("Infer") or {}).get("PostProcess") or {}).get("class_id_map_file")
    listed = read_label_list(str(label_file), key=key) if label_file else None
    if listed is not None and len(listed) == class_num and set(listed) == set(range(class_num)):
        return [listed[i] for i in range(class_num)]
    for names, source in ((data_names, "Global.data_dir"), (getattr(model, "class_names", None), "the weights")):
        if names and len(names) == class_num:
            if listed is not None:
                logger.warning("%s: %s names %d classes, the model has %d: using the class names of %s", key,
                               label_file, len(listed), class_num, source)
            return list(names)
    if listed is not None:
        check_label_list(listed, class_num, str(label_file), key, "Arch.class_num")  # raises: it does not fit
    return None


def evaluate_config(cfg: dict) -> dict[str, float]:
    """``tools/eval.py``: evaluate ``Global.pretrained_model`` on ``DataLoader.Eval``."""
    g = cfg["Global"]
    _setup(cfg)
    _prepare_data(cfg)
    data_names = _data_classes(cfg, from_train_data=False)
    model = _load_weights_for_use(cfg)
    class_num = _class_num(cfg)
    if not (cfg.get("DataLoader") or {}).get("Eval"):
        raise ConfigError("DataLoader.Eval is missing: tools/eval.py needs an evaluation data set")
    loader = build_dataloader(cfg["DataLoader"]["Eval"], "Eval", class_num, g.get("seed"))
    loss = build_loss((cfg.get("Loss") or {}).get("Eval"), class_num)
    metrics = build_metrics((cfg.get("Metric") or {}).get("Eval") or [{"TopkAcc": {"topk": [1, 5]}}], class_num)
    ratio = float(g.get("max_bad_image_ratio", 0.01))  # undecodable images: as in training and infer
    if g.get("save_plots"):
        names = _class_names_for_use(cfg, model, data_names) or getattr(loader.dataset, "class_names", None)
        folder = os.path.dirname(str(g["pretrained_model"])) or "."
        return evaluate_with_plots(model, loader, loss, metrics, folder, int(g.get("print_batch_step", 10)),
                                   class_names=names, max_bad_image_ratio=ratio)
    return evaluate(model, loader, loss, metrics, 0, int(g.get("print_batch_step", 10)), max_bad_image_ratio=ratio)


def build_postprocess(infer_cfg: Mapping, class_num: int, class_names: list[str] | None = None) -> Any:
    """``Infer.PostProcess``; ``class_names`` (already resolved) replace its ``class_id_map_file``."""
    post = dict(infer_cfg.get("PostProcess") or {"name": "Topk", "topk": 5})
    name = post.pop("name", "Topk")
    if class_names is not None:
        post["class_id_map_file"] = None
        post["class_names"] = class_names
    return POSTPROCESS.build(name, class_num=class_num, **post)


def infer_config(cfg: dict):
    """``tools/infer.py``: yields one list of result dicts per batch."""
    _setup(cfg)
    _prepare_data(cfg)
    data_names = _data_classes(cfg, from_train_data=False)
    infer = cfg.get("Infer") or {}
    if not infer.get("infer_imgs"):
        raise ConfigError("Infer.infer_imgs is not set: pass -o Infer.infer_imgs=<image file or folder>")
    model = _load_weights_for_use(cfg)
    named = list_named_images(infer["infer_imgs"])
    files = [path for path, _ in named]
    transform = build_transforms(infer.get("transforms"))
    post = build_postprocess(infer, _class_num(cfg), _class_names_for_use(cfg, model, data_names))
    skipped: list[str] = []  # undecodable files are skipped as in training and the predictor
    yield from predict_files(model, files, transform, post, int(infer.get("batch_size", 10)),
                             names=[name for _, name in named], skipped=skipped)
    check_bad_images(skipped, len(files), float(cfg["Global"].get("max_bad_image_ratio", 0.01)))


def export_config(cfg: dict) -> str:
    """``tools/export_model.py``: write the inference model to ``Global.save_inference_dir``."""
    g = cfg["Global"]
    setup_device("cpu", g.get("num_threads"))
    data_names = _data_classes(cfg, from_train_data=False)
    if g.get("pretrained_model") or g.get("data_dir"):
        model = _load_weights_for_use(cfg)
        names = _class_names_for_use(cfg, model, data_names)
    else:
        logger.warning("Global.pretrained_model is not set: exporting randomly initialised weights")
        model = build_model(cfg["Arch"])
        names = _class_names_for_use(cfg, model, None)
    infer = cfg.get("Infer") or {}
    post = infer.get("PostProcess") or {}
    return export_model(
        model,
        g.get("save_inference_dir", "./inference"),
        g.get("image_shape", [3, 224, 224]),
        cfg["Arch"]["name"],
        _class_num(cfg),
        transform_ops=infer.get("transforms"),
        topk=int(post.get("topk", 5)),
        class_names=names,
        add_softmax=bool(g.get("infer_add_softmax", True)),
        export_type=str(g.get("export_type", "paddle")),
    )
