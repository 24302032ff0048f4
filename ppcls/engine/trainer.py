"""The training loop: built objects in, epochs run; no modes, no config reading.

The trainer takes its collaborators in a few groups (:class:`Models`, :class:`TrainData`,
:class:`Optimization`, :class:`Evaluation`, :class:`Hooks`) plus its :class:`TrainerOptions`, a
:class:`~ppcls.engine.checkpoint.Checkpointer` and the :class:`TrainState` to continue from
(:func:`restore_run` reads one from a checkpoint).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import paddle
from paddle.optimizer.lr import LRScheduler

from ppcls.utils import dist
from ppcls.utils.errors import DataError
from ppcls.utils.meters import LossMeter, StepCosts, StepTimer, format_metrics

from .callbacks import Callback, EarlyStopper, StoppedBySignal, StopRequest
from .checkpoint import Checkpoint, Checkpointer
from .device import seed_epoch
from .ema import ModelEMA

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


@dataclass
class Models:
    """The network in its two roles, and its moving average."""

    wrapped: paddle.nn.Layer  # what the loop calls: paddle.DataParallel(plain) with NCCL, else plain itself
    plain: paddle.nn.Layer  # the unwrapped network: saved, averaged over ranks, shadowed by the EMA
    ema: ModelEMA | None = None


@dataclass
class TrainData:
    loader: Any  # yields (images, labels, bad_index) batches; bad_index >= 0 marks an undecodable image
    bad_image_paths: Callable[[np.ndarray], list[str]] | None = None  # dataset indices -> paths, for the error


@dataclass
class Optimization:
    """What turns a batch's loss into a weight update."""

    loss_fn: Callable[[paddle.Tensor, paddle.Tensor], dict[str, paddle.Tensor]]
    optimizer: paddle.optimizer.Optimizer
    lr_scheduler: LRScheduler  # stepped once per iteration
    lr_name: str = "lr"  # the schedule's name in the log line: lr(Cosine)
    scaler: paddle.amp.GradScaler | None = None  # float16 AMP's loss scaling
    amp_context: Callable[[], contextlib.AbstractContextManager] | None = None  # autocast around forward and loss
    grad_sync: Callable[[], None] | None = None  # averages gradients over ranks before a step (gloo); None otherwise


@dataclass
class Evaluation:
    """What is measured: metrics over the training batches, evaluations after epochs, the early stop."""

    train_metrics: Sequence[Any] = ()
    evaluator: Callable[[int], dict[str, float]] | None = None  # epoch -> eval values
    ema_evaluator: Callable[[int], dict[str, float]] | None = None  # run with the EMA weights applied
    early_stopper: EarlyStopper | None = None


@dataclass
class Hooks:
    """The run's outside world: callbacks at log steps and epoch ends, and the stop a signal handler requests."""

    callbacks: list[Callback] = field(default_factory=list)
    stop: StopRequest = field(default_factory=StopRequest)


def restore_run(checkpoint: Checkpoint, net: paddle.nn.Layer, optimizer: paddle.optimizer.Optimizer,
                ema: ModelEMA | None = None, early_stopper: EarlyStopper | None = None) -> TrainState:
    """Load a checkpoint's weights, optimizer, EMA and early-stop states; returns its :class:`TrainState`.

    The LR schedule is not taken from the optimizer state: the :class:`Trainer` puts it at the first
    iteration after the completed epochs (a set written on a signal stop is mid-epoch).
    """
    net.set_state_dict(checkpoint.weights)
    if checkpoint.optimizer is not None:
        optimizer.set_state_dict(checkpoint.optimizer)
    states = checkpoint.states
    if early_stopper is not None and "early_stop" in states:
        early_stopper.set_state_dict(states["early_stop"])
    if ema is not None:
        ema.restore(checkpoint)  # the EMA weights saved with this very set
    return TrainState.from_dict(states)


def seek_lr(scheduler: LRScheduler, step: int) -> None:
    """Put ``scheduler`` at iteration ``step`` (0 = the first): its LR is then that iteration's."""
    scheduler.last_epoch = step - 1
    scheduler.step()


class Trainer:
    """Runs ``fit()``: train an epoch, evaluate, checkpoint, repeat.

    It continues from ``state``: the LR schedule is put at the first iteration after the completed
    epochs, whatever position the scheduler (or a restored optimizer state) had.
    """

    def __init__(
        self,
        models: Models,
        data: TrainData,
        optim: Optimization,
        evaluation: Evaluation,
        options: TrainerOptions,
        checkpointer: Checkpointer,
        hooks: Hooks | None = None,
        state: TrainState | None = None,
    ) -> None:
        self.models = models
        self.data = data
        self.optim = optim
        self.evaluation = evaluation
        self.options = options
        self.checkpointer = checkpointer
        self.hooks = hooks or Hooks()
        self.state = state or TrainState()
        self.global_step = self.state.epoch * self.iters_per_epoch()
        seek_lr(self.optim.lr_scheduler, self.global_step)
        self._fit_start_step = self.global_step
        self._loader_failed = False

    def iters_per_epoch(self) -> int:
        n = len(self.data.loader)
        return min(n, self.options.max_iters_per_epoch) if self.options.max_iters_per_epoch else n

    # ------------------------------------------------------------------ checkpoints
    def _states(self) -> dict:
        d = self.state.to_dict()
        if self.evaluation.early_stopper is not None:
            d["early_stop"] = self.evaluation.early_stopper.state_dict()
        return d

    def _save(self, name: str) -> None:
        # each set carries the EMA weights of its own moment ({name}_ema.pdparams), so a resume from
        # it continues the same average; best_model's would be named best_model_ema.pdparams, which is
        # the EMA-selected best model (saved in _evaluate), so best_model has none
        ema = self.models.ema
        ema_state = ema.state_dict() if ema is not None and name != "best_model" else None
        self.checkpointer.save(name, self.models.plain, self.optim.optimizer, self._states(), ema_state=ema_state)

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainState:
        opt = self.options
        self._fit_start_step = self.global_step
        if self._stop_agreed():  # during start-up
            raise StoppedBySignal(self._stop_message("before the first training step"))
        for epoch in range(self.state.epoch + 1, opt.epochs + 1):
            sampler = getattr(self.data.loader, "batch_sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            seed_epoch(opt.seed, epoch)
            for cb in self.hooks.callbacks:
                cb.on_epoch_begin(epoch)
            train_values = self.train_one_epoch(epoch)
            dist.average_running_stats(self.models.plain)
            self.state.epoch = epoch
            eval_values = None
            stopped_early = False
            if self.evaluation.evaluator is not None and epoch >= opt.start_eval_epoch and (
                epoch % opt.eval_interval == 0 or epoch == opt.epochs
            ):
                eval_values = self._evaluate(epoch)
                if self.evaluation.early_stopper is not None:
                    stopped_early = self.evaluation.early_stopper.update(eval_values)
            self.state.history.append({"epoch": epoch, "train": train_values, "eval": eval_values})
            self._save("latest")
            if opt.save_interval and epoch % opt.save_interval == 0:
                self._save(f"epoch_{epoch}")
            for cb in self.hooks.callbacks:
                cb.on_epoch_end(epoch, train_values, eval_values)
            if self._stop_agreed():  # the signal came during the evaluation or the saves
                raise StoppedBySignal(self._stop_message(f"at the end of epoch {epoch}", written=True))
            if stopped_early:
                early = self.evaluation.early_stopper
                logger.info(
                    "early stop: no improvement of %s by more than %g for %d evaluations (epoch %d)",
                    early.monitor, early.min_delta, early.patience, epoch,
                )
                break
        for cb in self.hooks.callbacks:
            cb.on_train_end(self.state.history)
        return self.state

    def _evaluate(self, epoch: int) -> dict[str, float]:
        """Evaluate (and the EMA weights too), keeping the best models; the values, EMA's prefixed ``ema_``."""
        values = self.evaluation.evaluator(epoch)
        self._check_finite_eval(values, epoch)
        metric = values.get("top1", -values.get("loss", 0.0))
        if metric > self.state.best_metric:
            self.state.best_metric = metric
            self.state.best_epoch = epoch
            self._save("best_model")
        logger.info("[Eval][Epoch %d][best metric: %.5f (epoch %d)]", epoch,
                    self.state.best_metric, self.state.best_epoch)
        ema, ema_evaluator = self.models.ema, self.evaluation.ema_evaluator
        if ema is not None and ema_evaluator is not None:
            with ema.applied():
                ema_values = ema_evaluator(epoch)
            if ema_values.get("top1", 0.0) > self.state.best_ema_metric:
                self.state.best_ema_metric = ema_values.get("top1", 0.0)
                with ema.applied():
                    self.checkpointer.save("best_model_ema", self.models.plain, None, self._states())
            values.update({f"ema_{k}": v for k, v in ema_values.items()})
        return values

    def _check_finite_eval(self, values: dict[str, float], epoch: int) -> None:
        if any(not math.isfinite(v) for v in values.values()):
            raise NonFiniteLossError(
                f"evaluation after epoch {epoch} gave non-finite values ({format_metrics(values)}); "
                "no checkpoint of this epoch was written"
            )

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        self.models.wrapped.train()
        losses = LossMeter()
        for metric in self.evaluation.train_metrics:
            metric.reset()
        bad_batches: list = []
        n_iters = self.iters_per_epoch()
        timer = StepTimer(dist.world_size())
        it = -1
        for it, (images, labels, bad) in enumerate(timer.batches(self._batches())):
            if it >= n_iters:
                break
            terms, logits = self._train_step(images, labels, epoch, it, n_iters)
            losses.update(terms, images.shape[0])
            for metric in self.evaluation.train_metrics:
                metric.update(logits.detach(), labels)
            bad_batches.append(bad)
            timer.step_done(images.shape[0])
            log_step = (it + 1) % self.options.print_batch_step == 0 or it == n_iters - 1
            if self._stop_agreed(log_step):
                self._stop_on_signal(epoch, it)
            if log_step:
                self._log_iter(epoch, it, n_iters, losses, timer.window())
        if self._loader_failed:  # the loader ended early: a worker died while we were stopping
            self._stop_on_signal(epoch, it)
        return self._end_epoch(epoch, losses, timer, bad_batches)

    def _train_step(self, images: paddle.Tensor, labels: paddle.Tensor, epoch: int, it: int, n_iters: int
                    ) -> tuple[dict[str, paddle.Tensor], paddle.Tensor]:
        """Forward and backward, an optimizer step every ``accum_steps`` batches and at the last; (loss terms, logits)."""
        optim, opt = self.optim, self.options
        with optim.amp_context() if optim.amp_context else contextlib.nullcontext():
            logits = self.models.wrapped(images)
            terms = optim.loss_fn(logits, labels)
        if opt.nan_check_every == 1 or (it + 1) % opt.nan_check_every == 0 or it == n_iters - 1:
            self._check_finite(terms, epoch, it, n_iters)
        accum = max(1, opt.accum_steps)
        loss = terms["loss"] / accum if accum > 1 else terms["loss"]
        (optim.scaler.scale(loss) if optim.scaler is not None else loss).backward()
        if (it + 1) % accum == 0 or it == n_iters - 1:
            self._optimizer_step()
        optim.lr_scheduler.step()
        self.global_step += 1
        return terms, logits

    def _optimizer_step(self) -> None:
        optim = self.optim
        if optim.grad_sync is not None:
            optim.grad_sync()
        if optim.scaler is not None:
            optim.scaler.step(optim.optimizer)
            optim.scaler.update()
        else:
            optim.optimizer.step()
        optim.optimizer.clear_grad()
        if self.models.ema is not None:
            self.models.ema.update()

    def _end_epoch(self, epoch: int, losses: LossMeter, timer: StepTimer, bad_batches: list) -> dict[str, float]:
        """The epoch's averages, logged as the ``[Avg]`` line; too many undecodable images raise."""
        elapsed = timer.elapsed()
        reduce = dist.world_size() > 1
        values = losses.averages(reduce=reduce)
        for metric in self.evaluation.train_metrics:
            values.update(metric.compute(reduce=reduce))
        n_bad, bad_paths = self._bad_images(bad_batches)
        costs = timer.epoch()
        logger.info(
            "[Train][Epoch %d/%d][Avg]%s, batch_cost: %.5fs, reader_cost: %.5fs, ips: %.2f samples/s, "
            "undecodable_images: %d, time: %.1fs",
            epoch, self.options.epochs, format_metrics(values), costs.batch_cost, costs.reader_cost, costs.ips,
            n_bad, elapsed,
        )
        samples, ratio = timer.samples, self.options.max_bad_image_ratio
        if samples and n_bad > ratio * samples:
            shown = ", ".join(bad_paths[:5]) + (f" and {len(bad_paths) - 5} more" if len(bad_paths) > 5 else "")
            raise DataError(
                f"{n_bad} of {samples} images in epoch {epoch} could not be decoded, more than "
                f"Global.max_bad_image_ratio ({ratio:g}) allows: {shown}. Fix or remove "
                "them, or raise Global.max_bad_image_ratio to train on the rest"
            )
        values.update({"ips": costs.ips, "reader_cost": costs.reader_cost, "batch_cost": costs.batch_cost,
                       "undecodable_images": n_bad})
        return values

    def _bad_images(self, bad_batches: list) -> tuple[int, list[str]]:
        if not bad_batches:
            return 0, []
        arr = np.concatenate([b.numpy().reshape(-1) for b in bad_batches])
        idx = arr[arr >= 0]
        paths = self.data.bad_image_paths(idx) if self.data.bad_image_paths else [str(i) for i in idx]
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
            return self.hooks.stop.requested
        if not sync_point:
            return False
        flag = paddle.to_tensor([1 if self.hooks.stop.requested else 0], dtype="int32")
        dist.all_reduce_sum(flag)
        agreed = int(flag.numpy()[0]) > 0  # the same on every rank, unlike a flag a signal may set meanwhile
        if agreed and not self.hooks.stop.requested:
            self.hooks.stop.request("a stop signal (on another rank)")
        return agreed

    def _batches(self):
        """The loader's batches; a loader failing while a stop is requested just ends them.

        DataLoader workers ignore SIGINT/SIGTERM (``ppcls/data/build.py``); should one die
        anyway while the run is stopping, the stop is still the clean one.
        """
        self._loader_failed = False
        batches = iter(self.data.loader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as e:
                if not self.hooks.stop.requested:
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
            return (f"received {self.hooks.stop.signal_name} {when}: {latest} holds the last step (completed epochs: "
                    f"{self.state.epoch}); resume with -o Global.checkpoints={latest}")
        if self.state.epoch > 0:
            return (f"received {self.hooks.stop.signal_name} {when}: nothing more was trained; the checkpoint this run "
                    f"resumed from (epoch {self.state.epoch}) is unchanged")
        return f"received {self.hooks.stop.signal_name} {when}: nothing was trained and no checkpoint was written"

    def _log_iter(self, epoch: int, it: int, n_iters: int, losses: LossMeter, costs: StepCosts) -> None:
        values = losses.averages()
        for metric in self.evaluation.train_metrics:
            values.update(metric.compute())
        remaining = (self.options.epochs - epoch) * n_iters + (n_iters - it - 1)
        eta = datetime.timedelta(seconds=int(remaining * costs.batch_cost))
        lr = self.optim.optimizer.get_lr()
        logger.info(
            "[Train][Epoch %d/%d][Iter: %d/%d]%s(%s): %.5f, %s, batch_cost: %.5fs, "
            "reader_cost: %.5fs, ips: %.1f samples/s, eta: %s",
            epoch, self.options.epochs, it + 1, n_iters, "lr", self.optim.lr_name, lr,
            format_metrics(values), costs.batch_cost, costs.reader_cost, costs.ips, eta,
        )
        step_values = dict(values, lr=lr, ips=costs.ips)
        for cb in self.hooks.callbacks:
            cb.on_train_log(self.global_step, step_values)
