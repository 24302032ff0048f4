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
from ppcls.data import build_dataloader
from ppcls.data.prepare import prepare_dataset
from ppcls.data.transforms import build_transforms
from ppcls.loss import build_loss
from ppcls.metric import build_metrics
from ppcls.optimizer import build_lr, build_optimizer
from ppcls.registry import POSTPROCESS
from ppcls.utils import dist
from ppcls.utils.config import dump_config
from ppcls.utils.errors import ConfigError, PathExistsError, summarize
from ppcls.utils.io import ensure_writable_dir
from ppcls.utils.logger import FILE_ONLY, add_log_file

from .callbacks import EarlyStopper, StopRequest, install_stop_handlers
from .checkpoint import Checkpointer, load_checkpoint
from .device import set_seed, setup_device
from .evaluate import evaluate
from .trainer import Trainer, TrainerOptions, TrainState

logger = logging.getLogger(__name__)


def run_dir(cfg: Mapping) -> str:
    return os.path.join(cfg["Global"].get("output_dir", "./output"), cfg["Arch"]["name"])


def _setup(cfg: Mapping) -> str:
    g = cfg["Global"]
    device = setup_device(g.get("device", "cpu"), g.get("num_threads"), g.get("use_mkldnn"))
    dist.init_parallel()
    set_seed(g.get("seed"))
    return device


def _prepare_data(cfg: Mapping) -> None:
    prep = (cfg.get("DataLoader") or {}).get("prepare")
    if prep:
        if dist.is_main():
            prepare_dataset(prep)
        dist.barrier()


def _class_num(cfg: Mapping) -> int:
    return int(cfg["Arch"].get("class_num", 1000))


def _check_run_folder(cfg: Mapping, folder: str) -> None:
    """Refuse to mix a new run into a folder holding another run's checkpoints."""
    g = cfg["Global"]
    policy = g.get("resume_policy", "refuse")
    if policy not in ("refuse", "resume", "overwrite"):
        raise ConfigError(f"Global.resume_policy: expected refuse, resume or overwrite, got {summarize(policy)}")
    latest = os.path.join(folder, "latest.pdparams")
    if g.get("checkpoints") or not os.path.isfile(latest):
        return
    if policy == "resume":
        g["checkpoints"] = os.path.join(folder, "latest")
        logger.info("Global.resume_policy=resume: continuing the run in %s", folder)
        return
    if policy == "overwrite":
        if dist.is_main():
            moved = f"{folder.rstrip(os.sep)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
            os.replace(folder, moved)
            logger.warning("Global.resume_policy=overwrite: moved the earlier run to %s", moved)
        dist.barrier()
        return
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
    folder = run_dir(cfg)
    _check_run_folder(cfg, folder)
    if dist.is_main():
        ensure_writable_dir(folder, "Global.output_dir")
        add_log_file(os.path.join(folder, "train.log"))
    logger.info("config:\n%s", dump_config(cfg), extra=FILE_ONLY)  # the screen keeps errors in sight
    trainer = build_training(cfg, folder, stop=stop)
    result = trainer.fit()
    if dist.world_size() > 1:
        same, sums = dist.replicas_identical(trainer.net)
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
    class_num = _class_num(cfg)
    seed = g.get("seed")

    net = build_model(cfg["Arch"], weights=g.get("pretrained_model"))
    dl = cfg["DataLoader"]
    train_loader = build_dataloader(dl["Train"], "Train", class_num, seed)
    eval_loader = None
    if g.get("eval_during_train", True) and dl.get("Eval"):
        eval_loader = build_dataloader(dl["Eval"], "Eval", class_num, seed)
    _write_label_list(train_loader.dataset, folder, cfg)

    epochs = int(g.get("epochs", 1))
    accum = int(g.get("accum_steps", g.get("update_freq", 1)) or 1)
    batch = train_loader.batch_sampler.batch_size
    max_iters = g.get("max_iters_per_epoch")
    iters = len(train_loader) if not max_iters else min(len(train_loader), int(max_iters))
    if max_iters:
        # the sampler yields only these batches: the loader's prefetch thread then draws no augmentation
        # for batches that are never used, concurrently with the next epoch's
        train_loader.batch_sampler.max_batches = iters
    steps_per_epoch = iters  # the LR steps once per iteration
    lr = build_lr(cfg["Optimizer"]["lr"], epochs, steps_per_epoch, batch * dist.world_size() * accum)
    optimizer = build_optimizer(cfg["Optimizer"], net, lr)
    loss_fn = build_loss(cfg["Loss"]["Train"], class_num)
    eval_loss = build_loss((cfg.get("Loss") or {}).get("Eval"), class_num)
    metrics = build_metrics((cfg.get("Metric") or {}).get("Train"), class_num)
    eval_metrics = build_metrics((cfg.get("Metric") or {}).get("Eval") or [{"TopkAcc": {"topk": [1, 5]}}], class_num)

    state = TrainState()
    early = _build_early_stopper(g.get("early_stop"))
    ema = None
    if cfg.get("EMA"):
        from .ema import ModelEMA

        ema = ModelEMA(net, cfg["EMA"].get("decay", 0.9999))
    if g.get("checkpoints"):
        ckpt = load_checkpoint(str(g["checkpoints"]))
        states = ckpt.states
        net.set_state_dict(ckpt.weights)
        if ckpt.optimizer is not None:
            optimizer.set_state_dict(ckpt.optimizer)
        state = TrainState.from_dict(states)
        lr.last_epoch = state.epoch * steps_per_epoch - 1
        lr.step()  # the LR of the first iteration of the next epoch
        if early is not None and "early_stop" in states:
            early.set_state_dict(states["early_stop"])
        if ema is not None:
            ema.restore(ckpt)  # the EMA weights saved with this very set
        logger.info("resumed from %s: epoch %d done, continuing at epoch %d", g["checkpoints"], state.epoch,
                    state.epoch + 1)

    model, grad_sync = dist.wrap_for_training(net, bool(g.get("to_static")))
    print_step = int(g.get("print_batch_step", 10))
    evaluator = None
    if eval_loader is not None:
        def evaluator(epoch: int) -> dict[str, float]:
            return evaluate(model, eval_loader, eval_loss, eval_metrics, epoch, print_step,
                            max_bad_image_ratio=float(g.get("max_bad_image_ratio", 0.01)))

    from .amp import build_amp

    scaler, amp_context = build_amp(cfg.get("AMP"), g.get("device", "cpu"), optimizer, net)
    callbacks = _build_callbacks(cfg, folder, eval_loader, net) if save else []
    lr_cfg = cfg["Optimizer"]["lr"]
    return Trainer(
        model=model, net=net, loader=train_loader, loss_fn=loss_fn, optimizer=optimizer, lr_scheduler=lr,
        metrics=metrics,
        options=TrainerOptions(
            epochs=epochs, print_batch_step=print_step, eval_interval=int(g.get("eval_interval", 1)),
            start_eval_epoch=int(g.get("start_eval_epoch", 1)), save_interval=int(g.get("save_interval", 1)),
            accum_steps=accum, max_bad_image_ratio=float(g.get("max_bad_image_ratio", 0.01)),
            max_iters_per_epoch=int(max_iters) if max_iters else None,
            nan_check_every=1 if paddle.get_device() == "cpu" else print_step,
            seed=int(seed) if seed is not None else None,
        ),
        checkpointer=Checkpointer(folder, enabled=dist.is_main() and save),
        evaluator=evaluator, state=state, ema=ema, ema_evaluator=evaluator if ema is not None else None,
        early_stopper=early, callbacks=callbacks, stop=stop or StopRequest(),
        lr_name=str(lr_cfg.get("name", "lr")) if isinstance(lr_cfg, Mapping) else "Constant",
        bad_image_paths=lambda idx: [train_loader.dataset.paths[int(i)] for i in idx],
        scaler=scaler, amp_context=amp_context, grad_sync=grad_sync,
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


def _build_callbacks(cfg: Mapping, folder: str, eval_loader: Any, net: paddle.nn.Layer) -> list:
    from .visual import build_visual_callbacks

    if not dist.is_main():
        return []
    callbacks = build_visual_callbacks(cfg, folder, eval_loader)
    for cb in callbacks:
        cb.model = net  # plots after training run the final model over the eval set
    return callbacks


def _write_label_list(dataset: Any, folder: str, cfg: Mapping) -> None:
    names = getattr(dataset, "class_names", None)
    if names and dist.is_main():
        from ppcls.data.label_list import write_label_list

        write_label_list(os.path.join(folder, "label_list.txt"), names)


def _load_weights_for_use(cfg: Mapping) -> paddle.nn.Layer:
    g = cfg["Global"]
    path = g.get("pretrained_model")
    if not path:
        raise ConfigError("Global.pretrained_model is not set: pass -o Global.pretrained_model=output/<Arch.name>/best_model")
    model = build_model(cfg["Arch"], weights=str(path))
    model.eval()
    return model


def evaluate_config(cfg: dict) -> dict[str, float]:
    """``tools/eval.py``: evaluate ``Global.pretrained_model`` on ``DataLoader.Eval``."""
    g = cfg["Global"]
    _setup(cfg)
    _prepare_data(cfg)
    class_num = _class_num(cfg)
    model = _load_weights_for_use(cfg)
    if not (cfg.get("DataLoader") or {}).get("Eval"):
        raise ConfigError("DataLoader.Eval is missing: tools/eval.py needs an evaluation data set")
    loader = build_dataloader(cfg["DataLoader"]["Eval"], "Eval", class_num, g.get("seed"))
    loss = build_loss((cfg.get("Loss") or {}).get("Eval"), class_num)
    metrics = build_metrics((cfg.get("Metric") or {}).get("Eval") or [{"TopkAcc": {"topk": [1, 5]}}], class_num)
    ratio = float(g.get("max_bad_image_ratio", 0.01))  # undecodable images: as in training and infer
    if g.get("save_plots"):
        from .visual import class_names_for, evaluate_with_plots

        return evaluate_with_plots(model, loader, loss, metrics, run_dir(cfg), int(g.get("print_batch_step", 10)),
                                   class_names=class_names_for(cfg, loader.dataset), max_bad_image_ratio=ratio)
    return evaluate(model, loader, loss, metrics, 0, int(g.get("print_batch_step", 10)), max_bad_image_ratio=ratio)


def build_postprocess(infer_cfg: Mapping, class_num: int) -> Any:
    post = dict(infer_cfg.get("PostProcess") or {"name": "Topk", "topk": 5})
    name = post.pop("name", "Topk")
    return POSTPROCESS.build(name, class_num=class_num, **post)


def infer_config(cfg: dict):
    """``tools/infer.py``: yields one list of result dicts per batch."""
    from .infer import check_bad_images, list_named_images, predict_files

    _setup(cfg)
    _prepare_data(cfg)
    infer = cfg.get("Infer") or {}
    if not infer.get("infer_imgs"):
        raise ConfigError("Infer.infer_imgs is not set: pass -o Infer.infer_imgs=<image file or folder>")
    model = _load_weights_for_use(cfg)
    named = list_named_images(infer["infer_imgs"])
    files = [path for path, _ in named]
    transform = build_transforms(infer.get("transforms"))
    post = build_postprocess(infer, _class_num(cfg))
    skipped: list[str] = []  # undecodable files are skipped as in training and the predictor
    yield from predict_files(model, files, transform, post, int(infer.get("batch_size", 10)),
                             names=[name for _, name in named], skipped=skipped)
    check_bad_images(skipped, len(files), float(cfg["Global"].get("max_bad_image_ratio", 0.01)))


def export_config(cfg: dict) -> str:
    """``tools/export_model.py``: write the inference model to ``Global.save_inference_dir``."""
    from .export import export_model

    g = cfg["Global"]
    setup_device("cpu", g.get("num_threads"))
    model = _load_weights_for_use(cfg) if g.get("pretrained_model") else build_model(cfg["Arch"])
    if not g.get("pretrained_model"):
        logger.warning("Global.pretrained_model is not set: exporting randomly initialised weights")
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
        label_list_file=post.get("class_id_map_file"),
        add_softmax=bool(g.get("infer_add_softmax", True)),
        export_type=str(g.get("export_type", "paddle")),
    )
