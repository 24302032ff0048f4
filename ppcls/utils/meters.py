"""Device-side running sums, read only when a log line is written."""

from __future__ import annotations

import paddle


class LossMeter:
    """Sums each loss term times the batch size on the device; averages on demand."""

    def __init__(self) -> None:
        self.sums: dict[str, paddle.Tensor] = {}
        self.count = 0

    def update(self, losses: dict[str, paddle.Tensor], batch_size: int) -> None:
        for name, value in losses.items():
            v = value.detach() * batch_size
            self.sums[name] = v if name not in self.sums else self.sums[name] + v
        self.count += batch_size

    def averages(self, reduce: bool = False) -> dict[str, float]:
        if not self.sums:
            return {}
        names = list(self.sums)
        stacked = paddle.stack([self.sums[n].reshape([]) .astype("float32") for n in names]
                               + [paddle.to_tensor(float(self.count), dtype="float32")])
        if reduce:
            from ppcls.utils import dist

            stacked = dist.all_reduce_sum(stacked.clone())
        values = stacked.numpy()
        return {n: float(values[i] / max(values[-1], 1.0)) for i, n in enumerate(names)}


def format_metrics(values: dict[str, float], fmt: str = "{:.5f}") -> str:
    return ", ".join(f"{k}: {fmt.format(v)}" for k, v in values.items())
