"""Training speed: the trainer's steady-state ips beside a bare Paddle loop for the same model and batch.

python tools/benchmark_train.py -c CONFIG [-o ...] [--iters 20] [--warmup 5]
"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.utils.cli import load, parser, run_tool  # noqa: E402


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--iters", type=int, default=20, help="measured iterations")
    p.add_argument("--warmup", type=int, default=5, help="iterations before measuring")
    args = p.parse_args(argv)
    from ppcls.engine.benchmark import bare_loop_ips, trainer_ips

    cfg = load(args)
    trainer = trainer_ips(cfg, args.iters, args.warmup)
    g = cfg["Global"]
    bare = bare_loop_ips(cfg["Arch"], trainer["batch_size"], g.get("image_shape", [3, 224, 224]), args.iters,
                         args.warmup, to_static=bool(g.get("to_static")))
    import paddle

    threads = paddle.base.core.get_num_threads() if hasattr(paddle.base.core, "get_num_threads") else "?"
    print(f"model {cfg['Arch']['name']}, batch {trainer['batch_size']}, input {g.get('image_shape')}, "
          f"math threads {threads}, to_static {bool(g.get('to_static'))}")
    print(f"trainer   : {trainer['ips']:.1f} samples/s (reader_cost / batch_cost = {trainer['reader_share']:.1%})")
    print(f"bare loop : {bare:.1f} samples/s")
    print(f"trainer / bare = {trainer['ips'] / bare:.1%}")
    return 0


if __name__ == "__main__":
    run_tool(main)
