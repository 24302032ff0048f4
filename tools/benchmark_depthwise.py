"""Depthwise convolution speed: Paddle's CPU kernel vs the custom op (ppcls/ops), on a model's depthwise layers.

python tools/benchmark_depthwise.py [--batch 16] [--size 224] [--model PPLCNet_x1_0] [--threads N] [--repeat 7]

For every nn.Conv2D with groups == in_channels of the model, times forward and forward+backward
(grad wrt input and weight, random upstream gradient) of both kernels back to back, median of
--repeat runs, and prints per-layer times, the totals and the speed-up.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="PPLCNet_x1_0", help="registered model name")
    p.add_argument("--batch", type=int, default=16, help="batch size")
    p.add_argument("--size", type=int, default=224, help="square input side")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for both kernels (default: all cores)")
    p.add_argument("--repeat", type=int, default=7, help="timed runs per measurement (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before measuring")
    return p


def depthwise_layers(model, size: int) -> list[dict]:
    """(name, channels, kernel, stride, padding, dilation, input H, W) of each depthwise conv, in order: the
    models' DepthwiseConv2D layers, and any nn.Conv2D with groups == in_channels == out_channels."""
    import paddle
    import paddle.nn as nn

    from ppcls.ops import DepthwiseConv2D

    found, hooks = [], []
    for name, layer in model.named_sublayers():
        if isinstance(layer, DepthwiseConv2D) or (
                isinstance(layer, nn.Conv2D) and layer._groups == layer._in_channels == layer._out_channels > 1):
            def hook(lyr, inputs, name=name):
                channels = lyr._channels if isinstance(lyr, DepthwiseConv2D) else lyr._in_channels
                found.append({"name": name, "channels": channels, "kernel": list(lyr._kernel_size),
                              "stride": lyr._stride, "padding": lyr._padding, "dilation": lyr._dilation,
                              "hw": list(inputs[0].shape[2:])})
            hooks.append(layer.register_forward_pre_hook(hook))
    model.eval()
    with paddle.no_grad():
        model(paddle.zeros([1, 3, size, size]))
    for h in hooks:
        h.remove()
    return found


def median_time(fn, repeat: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        os.environ["PPCLS_DEPTHWISE_THREADS"] = str(args.threads)
    import paddle
    import paddle.nn.functional as F

    from ppcls.arch import build_model
    from ppcls.ops import depthwise_conv as dwc

    paddle.set_device("cpu")
    threads = args.threads or dwc.num_threads()
    paddle.base.core.set_num_threads(threads)
    if dwc.load_extension() is None:
        print("the custom op could not be built (see the warning above)")
        return 1
    layers = depthwise_layers(build_model({"name": args.model}), args.size)

    def run(kind: str, layer: dict, x, w, g, backward: bool):
        def paddle_conv():
            return F.conv2d(x, w, stride=layer["stride"], padding=layer["padding"], dilation=layer["dilation"],
                            groups=layer["channels"])

        def fast_conv():
            return dwc.depthwise_conv2d(x, w, layer["stride"], layer["padding"], layer["dilation"])

        conv = paddle_conv if kind == "paddle" else fast_conv

        def step():
            y = conv()
            if backward:
                paddle.grad([y], [x, w], [g])  # CPU eager ops are synchronous: no sync needed
        return median_time(step, args.repeat, args.warmup)

    print(f"model {args.model}, batch {args.batch}, input {args.size}x{args.size}, threads {threads}, "
          f"{len(layers)} depthwise layers, median of {args.repeat} runs (ms); load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    head = (f"{'layer':<28}{'C':>5}{'k':>3}{'s':>3}{'HxW':>9} | {'fwd paddle':>10}{'fwd fast':>10}{'x':>6} | "
            f"{'f+b paddle':>10}{'f+b fast':>10}{'x':>6}")
    print(head)
    print("-" * len(head))
    totals = {"fp": 0.0, "ff": 0.0, "bp": 0.0, "bf": 0.0}
    paddle.seed(0)
    for layer in layers:
        c, (h, w_) = layer["channels"], layer["hw"]
        x = paddle.randn([args.batch, c, h, w_])
        x.stop_gradient = False
        w = paddle.randn([c, 1, *layer["kernel"]]) * 0.1
        w.stop_gradient = False
        y = F.conv2d(x, w, stride=layer["stride"], padding=layer["padding"], dilation=layer["dilation"], groups=c)
        g = paddle.randn(y.shape)
        t = {"fp": run("paddle", layer, x, w, g, False), "ff": run("fast", layer, x, w, g, False),
             "bp": run("paddle", layer, x, w, g, True), "bf": run("fast", layer, x, w, g, True)}
        for k in totals:
            totals[k] += t[k]
        stride = layer["stride"] if isinstance(layer["stride"], int) else layer["stride"][0]
        print(f"{layer['name'][-28:]:<28}{c:>5}{layer['kernel'][0]:>3}{stride:>3}{f'{h}x{w_}':>9} | "
              f"{t['fp'] * 1e3:>10.2f}{t['ff'] * 1e3:>10.2f}{t['fp'] / t['ff']:>6.1f} | "
              f"{t['bp'] * 1e3:>10.2f}{t['bf'] * 1e3:>10.2f}{t['bp'] / t['bf']:>6.1f}")
    print("-" * len(head))
    print(f"{'total':<48} | {totals['fp'] * 1e3:>10.2f}{totals['ff'] * 1e3:>10.2f}"
          f"{totals['fp'] / totals['ff']:>6.1f} | {totals['bp'] * 1e3:>10.2f}{totals['bf'] * 1e3:>10.2f}"
          f"{totals['bp'] / totals['bf']:>6.1f}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
