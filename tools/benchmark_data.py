"""Measure the Train data loader alone: samples/s, and how long a trainer would wait for it.

    python tools/benchmark_data.py -c CONFIG [-o Key=value ...] [--batches 20] [--step_ms MS]

The loader is built from ``DataLoader.Train`` exactly as training builds it (workers, batch
operators, ``class_num`` from ``Arch``). One warm-up batch (worker start-up) is fetched and not
timed; then ``--batches`` batches are timed back to back. When the epoch ends the iterator is
restarted and the restart is timed too (set ``DataLoader.Train.loader.persistent_workers`` to
keep the workers across epochs, as for a short list), so use enough batches that the few
batches the workers prefetch do not flatter the figure.

How this relates to the trainer's log: ``reader_cost`` is the time a step waits for its batch,
``batch_cost`` the whole step (wait + compute). With the loader delivering a batch every
``L`` ms when nobody waits for it, and a compute step of ``S`` ms, the workers prepare the next
batches while the step runs, so the trainer waits about ``max(0, L - S)`` per step:
``reader_cost / batch_cost ~ max(0, L - S) / max(L, S)``. ``S`` is ``--step_ms`` or, when that
is not given, measured here: forward + backward + SGD update of ``Arch`` on one loaded batch
(median of ``--step_repeats``). On a CPU the workers and the model share the cores, so the
real wait is larger than this estimate; treat it as a lower bound.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.utils.cli import load, parser, run_tool  # noqa: E402
from ppcls.utils.errors import ArgumentError, ConfigError  # noqa: E402


def wait_share(loader_ms: float, step_ms: float) -> float:
    """Fraction of a training step spent waiting for data (``reader_cost / batch_cost``)."""
    longest = max(loader_ms, step_ms)
    return max(0.0, loader_ms - step_ms) / longest if longest > 0 else 0.0


def time_loader(loader, batches: int) -> tuple[list[float], list[int], int, object]:
    """Arrival gaps (s) and sizes of ``batches`` batches after a warm-up batch, the number of
    epoch restarts among them, and a full-size batch. A restart's cost is counted in the gap of
    the next batch, as the trainer sees it at each epoch start."""
    sampler = loader.batch_sampler
    epoch = restarts = 0
    it = iter(loader)
    full = next(it)  # warm-up: workers start, first batch
    gaps: list[float] = []
    sizes: list[int] = []
    tic = time.perf_counter()
    while len(gaps) < batches:
        try:
            batch = next(it)
        except StopIteration:
            epoch += 1
            restarts += 1
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            it = iter(loader)
            continue
        now = time.perf_counter()
        gaps.append(now - tic)
        tic = now
        sizes.append(int(batch[0].shape[0]))
        if sizes[-1] > int(full[0].shape[0]):
            full = batch
    return gaps, sizes, restarts, full


def measure_step_ms(arch_cfg: dict, batch, repeats: int) -> float:
    """Median ms of forward + backward + SGD update of the model on one batch."""
    import paddle
    import paddle.nn.functional as F

    from ppcls.arch import build_model

    model = build_model(arch_cfg)
    model.train()
    opt = paddle.optimizer.SGD(learning_rate=1e-4, parameters=model.parameters())
    images, labels = (x if isinstance(x, paddle.Tensor) else paddle.to_tensor(x) for x in batch[:2])
    times = []
    for i in range(repeats + 1):
        tic = time.perf_counter()
        logits = model(images)
        if labels.ndim == 2 and labels.shape[-1] == logits.shape[-1] and labels.dtype != paddle.int64:
            loss = -(labels.astype(logits.dtype) * F.log_softmax(logits, axis=-1)).sum(axis=-1).mean()
        else:
            loss = F.cross_entropy(logits, labels.reshape([-1, 1]))
        loss.backward()
        opt.step()
        opt.clear_grad()
        float(loss)  # wait for the step to finish
        if i > 0:  # the first step builds kernels
            times.append(time.perf_counter() - tic)
    return statistics.median(times) * 1000.0


def main(argv=None) -> int:
    p: argparse.ArgumentParser = parser(__doc__)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--batches", type=int, default=20, help="timed batches after one warm-up batch")
    p.add_argument(
        "--step_ms",
        type=float,
        default=None,
        help="compute time of one training step in ms; measured on the model when omitted",
    )
    p.add_argument("--step_repeats", type=int, default=3, help="timed steps when measuring --step_ms")
    args = p.parse_args(argv)
    if args.batches < 1:
        raise ArgumentError(f"--batches: expected a positive number, got {args.batches}")
    cfg = load(args)
    from ppcls.data import build_dataloader
    from ppcls.data.prepare import prepare_dataset
    from ppcls.engine.device import setup_device

    g = cfg["Global"]
    dl = cfg.get("DataLoader") or {}
    if "Train" not in dl:
        raise ConfigError(f"{args.config}: DataLoader.Train is missing; nothing to benchmark")
    prepare_dataset(dl.get("prepare"))
    class_num = int(cfg["Arch"].get("class_num", 1000))
    loader = build_dataloader(dl["Train"], "Train", class_num, g.get("seed"))
    workers = int((dl["Train"].get("loader") or {}).get("num_workers", 0))

    times, sizes, restarts, full = time_loader(loader, args.batches)
    total = sum(times)
    samples_per_s = sum(sizes) / total
    loader_ms = total / len(times) * 1000.0
    ms = sorted(t * 1000.0 for t in times)
    print(f"config: {args.config}")
    print(
        f"loader: {workers} worker(s), batch {max(sizes)}, {len(times)} timed batches "
        f"(+1 warm-up, {restarts} epoch restart(s) included), {os.cpu_count()} CPU cores"
    )
    print(f"samples/s: {samples_per_s:.1f}")
    print(
        f"ms/batch: mean {loader_ms:.1f}, median {statistics.median(ms):.1f}, "
        f"p90 {ms[min(len(ms) - 1, int(0.9 * len(ms)))]:.1f}"
    )

    step_ms = args.step_ms
    if step_ms is None:  # the device matters only for the model step
        setup_device(g.get("device", "cpu"), g.get("num_threads"), g.get("use_mkldnn"))
        step_ms = measure_step_ms(cfg["Arch"], full, max(1, args.step_repeats))
        how = (
            f"measured: {cfg['Arch']['name']} forward+backward+update on a batch of "
            f"{int(full[0].shape[0])}, median of {max(1, args.step_repeats)}"
        )
    else:
        how = "given"
    share = wait_share(loader_ms, step_ms)
    print(f"step_ms: {step_ms:.1f} ({how})")
    print(
        f"estimated reader_cost/batch_cost: {share:.1%} of each step waiting for data "
        f"(wait ~ {max(0.0, loader_ms - step_ms):.1f} ms per step; a lower bound on a CPU)"
    )
    return 0


if __name__ == "__main__":
    run_tool(main)
