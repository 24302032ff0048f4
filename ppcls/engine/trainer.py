"""The training loop: built objects in, epochs run; no modes, no config reading."""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import paddle

from ppcls.utils import dist
from ppcls.utils.errors import DataError
from ppcls.utils.meters import LossMeter, format_metrics

from .callbacks import Callback, EarlyStopper, StoppedBySignal, StopRequest
from .checkpoint import Checkpointer
from .device import seed_epoch

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


@dataclass
class TrainState:
    """What a checkpoint's ``.pdstates`` records."""

    epoch: int = 0  # last completed epoch
    best_metric: float = -math.inf
    best_epoch: int = 0
    best_ema_metric: float = -math.inf
    history: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "metric": self.best_metric, "best_epoch": self.best_epoch,
                "best_ema_metric": self.best_ema_metric, "history": self.history}

    @classmethod
    def from_dict(cls, d: dict) -> TrainState:
        return cls(epoch=int(d.get("epoch", 0)), best_metric=float(d.get("metric", -math.inf)),
                   best_epoch=int(d.get("best_epoch", 0)),
                   best_ema_metric=float(d.get("best_ema_metric", -math.inf)),
                   history=list(d.get("history", [])))


@dataclass
class TrainerOptions:
    epochs: int
    print_batch_step: int = 10
    eval_interval: int = 1
    start_eval_epoch: int = 1
    save_interval: int = 1
    accum_steps: int = 1
    max_bad_image_ratio: float = 0.01
    max_iters_per_epoch: int | None = None
    nan_check_every: int = 1  # 1 on the CPU (no device queue to stall); the log interval on GPUs
    seed: int | None = None  # Global.seed: random, np.random and paddle are reseeded from (seed, epoch) per epoch


class Trainer:
    """Runs ``fit()``: train an epoch, evaluate, checkpoint, repeat."""

    def __init__(
        self,
        model: paddle.nn.Layer,
        net: paddle.nn.Layer,
        loader: Any,
        loss_fn: Callable,
        optimizer: paddle.optimizer.Optimizer,
        lr_scheduler: Any,
        metrics: Sequence[Any],
        options: TrainerOptions,
        checkpointer: Checkpointer,
        evaluator: Callable[[int], dict[str, float]] | None = None,
        state: TrainState | None = None,
        ema: Any | None = None,
        ema_evaluator: Callable[[int], dict[str, float]] | None = None,
        early_stopper: EarlyStopper | None = None,
        callbacks: Sequence[Callback] = (),
        stop: StopRequest | None = None,
        lr_name: str = "lr",
        bad_image_paths: Callable[[np.ndarray], list[str]] | None = None,
        scaler: Any | None = None,
        amp_context: Callable[[], Any] | None = None,
        grad_sync: Callable[[], None] | None = None,
    ) -> None:
        self.model = model  # what runs forward (maybe DataParallel)
        self.net = net  # the plain model whose weights are saved
        self.loader = loader
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.metrics = list(metrics)
        self.opt = options
        self.checkpointer = checkpointer
        self.evaluator = evaluator
        self.state = state or TrainState()
        self.ema = ema
        self.ema_evaluator = ema_evaluator
        self.early_stopper = early_stopper
        self.callbacks = list(callbacks)
        self.stop = stop or StopRequest()
        self.lr_name = lr_name
        self.bad_image_paths = bad_image_paths
        self.scaler = scaler
        self.amp_context = amp_context
        self.grad_sync = grad_sync  # averages gradients over ranks before a step (gloo); None otherwise
        self.global_step = self.state.epoch * self.iters_per_epoch()
        self._fit_start_step = self.global_step
        self._loader_failed = False

    def iters_per_epoch(self) -> int:
        n = len(self.loader)
        return min(n, self.opt.max_iters_per_epoch) if self.opt.max_iters_per_epoch else n

    # ------------------------------------------------------------------ checkpoints
    def _states(self, extra: dict | None = None) -> dict:
        d = self.state.to_dict()
        if self.early_stopper is not None:
            d["early_stop"] = self.early_stopper.state_dict()
        d.update(extra or {})
        return d

    def _save(self, name: str) -> None:
        # each set carries the EMA weights of its own moment ({name}_ema.pdparams), so a resume from
        # it continues the same average; best_model's would be named best_model_ema.pdparams, which is
        # the EMA-selected best model (saved below), so best_model has none
        ema = self.ema.state_dict() if self.ema is not None and name != "best_model" else None
        self.checkpointer.save(name, self.net, self.optimizer, self._states(), ema_state=ema)

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainState:
        start_epoch = self.state.epoch + 1
        stopped_early = False
        self._fit_start_step = self.global_step
        if self._stop_agreed():  # during start-up
            raise StoppedBySignal(self._stop_message("before the first training step"))
        for epoch in range(start_epoch, self.opt.epochs + 1):
            if hasattr(self.loader, "batch_sampler") and hasattr(self.loader.batch_sampler, "set_epoch"):
                self.loader.batch_sampler.set_epoch(epoch)
            seed_epoch(self.opt.seed, epoch)
            for cb in self.callbacks:
                cb.on_epoch_begin(epoch)
            train_values = self.train_one_epoch(epoch)
            dist.average_running_stats(self.net)
            self.state.epoch = epoch
            eval_values = None
            if self.evaluator is not None and epoch >= self.opt.start_eval_epoch and (
                epoch % self.opt.eval_interval == 0 or epoch == self.opt.epochs
            ):
                eval_values = self.evaluator(epoch)
                self._check_finite_eval(eval_values, epoch)
                metric = eval_values.get("top1", -eval_values.get("loss", 0.0))
                if metric > self.state.best_metric:
                    self.state.best_metric = metric
                    self.state.best_epoch = epoch
                    self._save("best_model")
                logger.info("[Eval][Epoch %d][best metric: %.5f (epoch %d)]", epoch,
                            self.state.best_metric, self.state.best_epoch)
                if self.ema is not None and self.ema_evaluator is not None:
                    with self.ema.applied():
                        ema_values = self.ema_evaluator(epoch)
                    if ema_values.get("top1", 0.0) > self.state.best_ema_metric:
                        self.state.best_ema_metric = ema_values.get("top1", 0.0)
                        with self.ema.applied():
                            self.checkpointer.save("best_model_ema", self.net, None, self._states())
                    eval_values.update({f"ema_{k}": v for k, v in ema_values.items()})
                if self.early_stopper is not None:
                    stopped_early = self.early_stopper.update(eval_values)
            self.state.history.append({"epoch": epoch, "train": train_values, "eval": eval_values})
            self._save("latest")
            if self.opt.save_interval and epoch % self.opt.save_interval == 0:
                self._save(f"epoch_{epoch}")
            for cb in self.callbacks:
                cb.on_epoch_end(epoch, train_values, eval_values)
            if self._stop_agreed():  # the signal came during the evaluation or the saves
                raise StoppedBySignal(self._stop_message(f"at the end of epoch {epoch}", written=True))
            if stopped_early:
                logger.info(
                    "early stop: no improvement of %s by more than %g for %d evaluations (epoch %d)",
                    self.early_stopper.monitor, self.early_stopper.min_delta,
                    self.early_stopper.patience, epoch,
                )
                break
        for cb in self.callbacks:
            cb.on_train_end(self.state.history)
        return self.state

    def _check_finite_eval(self, values: dict[str, float], epoch: int) -> None:
        if any(not math.isfinite(v) for v in values.values()):
            raise NonFiniteLossError(
                f"evaluation after epoch {epoch} gave non-finite values ({format_metrics(values)}); "
                "no checkpoint of this epoch was written"
            )

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        meter = LossMeter()
        for metric in self.metrics:
            metric.reset()
        bad_batches: list = []
        n_iters = self.iters_per_epoch()
        accum = max(1, self.opt.accum_steps)
        reader_cost = batch_cost = 0.0
        window_reader = window_batch = 0.0
        window_samples = 0
        samples = 0
        epoch_start = tic = time.perf_counter()
        world = dist.world_size()
        it = -1
        for it, (images, labels, bad) in enumerate(self._batches()):
            if it >= n_iters:
                break
            t_data = time.perf_counter() - tic
            bs = images.shape[0]
            ctx = self.amp_context() if self.amp_context else contextlib.nullcontext()
            with ctx:
                logits = self.model(images)
                losses = self.loss_fn(logits, labels)
            loss = losses["loss"]
            if self.opt.nan_check_every == 1 or (it + 1) % self.opt.nan_check_every == 0 or it == n_iters - 1:
                self._check_finite(losses, epoch, it, n_iters)
            scaled = loss / accum if accum > 1 else loss
            if self.scaler is not None:
                self.scaler.scale(scaled).backward()
            else:
                scaled.backward()
            if (it + 1) % accum == 0 or it == n_iters - 1:
                if self.grad_sync is not None:
                    self.grad_sync()
                if self.scaler is not None:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    self.optimizer.step()
                self.optimizer.clear_grad()
                if self.ema is not None:
                    self.ema.update()
            self.lr_scheduler.step()
            self.global_step += 1
            meter.update(losses, bs)
            for metric in self.metrics:
                metric.update(logits.detach(), labels)
            bad_batches.append(bad)
            t_iter = time.perf_counter() - tic
            reader_cost += t_data
            batch_cost += t_iter
            window_reader += t_data
            window_batch += t_iter
            window_samples += bs
            samples += bs
            if self._stop_agreed((it + 1) % self.opt.print_batch_step == 0 or it == n_iters - 1):
                self._stop_on_signal(epoch, it)
            if (it + 1) % self.opt.print_batch_step == 0 or it == n_iters - 1:
                self._log_iter(epoch, it, n_iters, meter, window_batch, window_reader, window_samples * world)
                window_reader = window_batch = 0.0
                window_samples = 0
            tic = time.perf_counter()
        if self._loader_failed:  # the loader ended early: a worker died while we were stopping
            self._stop_on_signal(epoch, it)
        elapsed = time.perf_counter() - epoch_start
        values = meter.averages(reduce=world > 1)
        for metric in self.metrics:
            values.update(metric.compute(reduce=world > 1))
        n_bad, bad_paths = self._bad_images(bad_batches)
        ips = samples * world / max(batch_cost, 1e-9)
        logger.info(
            "[Train][Epoch %d/%d][Avg]%s, batch_cost: %.5fs, reader_cost: %.5fs, ips: %.2f samples/s, "
            "undecodable_images: %d, time: %.1fs",
            epoch, self.opt.epochs, format_metrics(values), batch_cost / max(n_iters, 1),
            reader_cost / max(n_iters, 1), ips, n_bad, elapsed,
        )
        if samples and n_bad > self.opt.max_bad_image_ratio * samples:
            shown = ", ".join(bad_paths[:5]) + (f" and {len(bad_paths) - 5} more" if len(bad_paths) > 5 else "")
            raise DataError(
                f"{n_bad} of {samples} images in epoch {epoch} could not be decoded, more than "
                f"Global.max_bad_image_ratio ({self.opt.max_bad_image_ratio:g}) allows: {shown}. Fix or remove "
                "them, or raise Global.max_bad_image_ratio to train on the rest"
            )
        values.update({"ips": ips, "reader_cost": reader_cost / max(n_iters, 1),
                       "batch_cost": batch_cost / max(n_iters, 1), "undecodable_images": n_bad})
        return values

    def _bad_images(self, bad_batches: list) -> tuple[int, list[str]]:
        if not bad_batches:
            return 0, []
        arr = np.concatenate([b.numpy().reshape(-1) for b in bad_batches])
        idx = arr[arr >= 0]
        paths = self.bad_image_paths(idx) if self.bad_image_paths else [str(i) for i in idx]
        return int(idx.size), paths

    def _check_finite(self, losses: dict, epoch: int, it: int, n_iters: int) -> None:
        if bool(paddle.isfinite(losses["loss"]).all()):
            return
        terms = ", ".join(f"{k}: {float(v):.5g}" for k, v in losses.items())
        kept = (f"the last good checkpoint ({self.checkpointer.folder}/latest, epoch {self.state.epoch}) is kept"
                if self.state.epoch else "no checkpoint had been written yet")
        raise NonFiniteLossError(
            f"non-finite loss at epoch {epoch}, iteration {it + 1}/{n_iters} ({terms}); stopping: {kept}. "
            "Lower the learning rate (Optimizer.lr.learning_rate) or check the data"
        )

    def _stop_agreed(self, sync_point: bool = True) -> bool:
        """Whether to stop now on a signal.

        One process: at every step. Several ranks decide together, by summing their flags, at
        log steps and epoch ends only: a rank stopping alone would leave the others waiting in a
        collective (and rank 0 might be the one left, unable to write ``latest``), and a
        collective at every step would cost a host synchronisation per step.
        """
        if dist.world_size() == 1:
            return self.stop.requested
        if not sync_point:
            return False
        flag = paddle.to_tensor([1 if self.stop.requested else 0], dtype="int32")
        dist.all_reduce_sum(flag)
        agreed = int(flag.numpy()[0]) > 0  # the same on every rank, unlike a flag a signal may set meanwhile
        if agreed and not self.stop.requested:
            self.stop.request("a stop signal (on another rank)")
        return agreed

    def _batches(self):
        """The loader's batches; a loader failing while a stop is requested just ends them.

        DataLoader workers ignore SIGINT/SIGTERM (``ppcls/data/build.py``); should one die
        anyway while the run is stopping, the stop is still the clean one.
        """
        self._loader_failed = False
        batches = iter(self.loader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as e:
                if not self.stop.requested:
                    raise
                logger.warning("the data loader ended while stopping (%s: %s)", type(e).__name__, str(e)[:200])
                self._loader_failed = True
                return
            yield batch

    def _stop_on_signal(self, epoch: int, it: int) -> None:
        # weights are mid-epoch; the states record the last completed epoch so a resume
        # repeats this epoch from its start with the learning rate of that start
        if it < 0:  # no step of this epoch yet: latest is the previous epoch's, if this run wrote one
            raise StoppedBySignal(self._stop_message(f"at the start of epoch {epoch}",
                                                     written=self.global_step > self._fit_start_step))
        self._save("latest")
        dist.barrier()  # the other ranks end only once rank 0 has written latest (a launcher ends the rest)
        raise StoppedBySignal(self._stop_message(f"at epoch {epoch}, iteration {it + 1}", written=True))

    def _stop_message(self, when: str, written: bool = False) -> str:
        latest = f"{self.checkpointer.folder}/latest"
        if written:  # by rank 0
            return (f"received {self.stop.signal_name} {when}: {latest} holds the last step (completed epochs: "
                    f"{self.state.epoch}); resume with -o Global.checkpoints={latest}")
        if self.state.epoch > 0:
            return (f"received {self.stop.signal_name} {when}: nothing more was trained; the checkpoint this run "
                    f"resumed from (epoch {self.state.epoch}) is unchanged")
        return f"received {self.stop.signal_name} {when}: nothing was trained and no checkpoint was written"

    def _log_iter(self, epoch: int, it: int, n_iters: int, meter: LossMeter, window_batch: float,
                  window_reader: float, window_samples: int) -> None:
        steps = ((it + 1) - 1) % self.opt.print_batch_step + 1
        batch_cost = window_batch / steps
        reader_cost = window_reader / steps
        values = meter.averages()
        for metric in self.metrics:
            values.update(metric.compute())
        remaining = (self.opt.epochs - epoch) * n_iters + (n_iters - it - 1)
        eta = datetime.timedelta(seconds=int(remaining * batch_cost))
        ips = window_samples / max(window_batch, 1e-9)
        lr = self.optimizer.get_lr()
        logger.info(
            "[Train][Epoch %d/%d][Iter: %d/%d]%s(%s): %.5f, %s, batch_cost: %.5fs, "
            "reader_cost: %.5fs, ips: %.1f samples/s, eta: %s",
            epoch, self.opt.epochs, it + 1, n_iters, "lr", self.lr_name, lr,
            format_metrics(values), batch_cost, reader_cost, ips, eta,
        )
        step_values = dict(values, lr=lr, ips=ips)
        for cb in self.callbacks:
            cb.on_train_log(self.global_step, step_values)
