"""Training speed.

    python tools/benchmark_train.py -c CONFIG [-o ...] [--iters 20] [--warmup 5]

the trainer's steady-state ips beside a bare Paddle loop for the same model and batch; and

    python tools/benchmark_train.py -c CONFIG --paddleclas PADDLECLAS_DIR --data DIR [--batch 16]
        [--workers 2] [--epochs 2] [--paddleclas_python PY] [-o ...]

this framework's ``tools/train.py`` and PaddleClas's (a checkout at PADDLECLAS_DIR, its recipe at
the same relative path under ``ppcls/configs``) run one after the other on the same data (DIR holds
``train_list.txt`` and its images, as ``tools/split_dataset.py`` writes; ``--make_data`` writes 245
JPEG photos there first), batch, loader workers and epochs, on the CPU, without evaluation. Prints
each one's median logged ips over the epochs after the first 5 iterations, its wall and CPU time,
and the ratio. ``--eval`` makes it a whole run: both evaluate every epoch on ``DIR/val_list.txt``
(the ratio of wall times is the figure), then each one's ``tools/eval.py`` evaluates its last
checkpoint on the whole list and on its first line: (N - 1) / the time difference is the evaluation
throughput without start-up.
"""

import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.utils.cli import load, parser, run_tool  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _run(cmd: list[str], cwd: str, env: dict) -> tuple[str, float, float]:
    """(log text, wall seconds, CPU seconds of the process and its children) of one training run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    tic = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - tic
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}):\n{text[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return text, wall, cpu


def _eval_ips(train_cmd: list[str], work: str, val_list: str, env: dict, name: str, model: str) -> float:
    """Images/s of ``tools/eval.py`` (the train command's tool and config) on its run's last checkpoint,
    start-up excluded: (N - 1) / (time on the whole list - time on its first line)."""
    python, tool, _, config = train_cmd[:4]
    overrides = train_cmd[4:]
    folder = "theirs" if name == "PaddleClas" else "ours"
    # PaddleClas 2.6 writes into output_dir itself; this framework into output_dir/<Arch.name>
    weights = os.path.join(work, folder, "latest") if name == "PaddleClas" else os.path.join(work, folder, model, "latest")
    one = os.path.join(work, f"{folder}_one.txt")
    with open(val_list, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    with open(one, "w", encoding="utf-8") as f:
        f.write(lines[0])
    times = []
    for listed in (val_list, one):
        cmd = [python, os.path.join(os.path.dirname(tool), "eval.py"), "-c", config] + overrides + [
            "-o", f"Global.pretrained_model={weights}", "-o", f"DataLoader.Eval.dataset.cls_label_path={listed}"]
        times.append(_run(cmd, os.path.dirname(os.path.dirname(tool)) if name == "PaddleClas" else work, env)[1])
    return (len(lines) - 1) / max(times[0] - times[1], 1e-9)


def _class_count(list_path: str) -> int:
    with open(list_path, encoding="utf-8") as f:
        return 1 + max(int(line.rsplit(None, 1)[1]) for line in f if line.strip())


def compare(args, cfg: dict) -> int:
    """Both trainers, same data and settings; prints the comparison table."""
    from ppcls.engine.benchmark import logged_ips, median_ips

    data = os.path.abspath(args.data)
    if args.make_data:
        from ppcls.data.prepare.photos import write_photo_set

        write_photo_set(data, 245)
    train_list = os.path.join(data, "train_list.txt")
    if not os.path.isfile(train_list):
        raise SystemExit(f"--data {data}: no train_list.txt (python tools/split_dataset.py --dataset_dir {data} "
                         "--val_value 0.2 writes one; --make_data writes a photo set)")
    rel = os.path.relpath(os.path.abspath(args.config), os.path.join(REPO, "configs"))
    theirs = args.paddleclas_config or os.path.join(args.paddleclas, "ppcls", "configs", rel)
    common = [
        "Global.device=cpu", f"Global.epochs={args.epochs}", "Global.eval_during_train=False",
        "Global.print_batch_step=1", "Global.save_interval=1000", f"Arch.class_num={_class_count(train_list)}",
        f"DataLoader.Train.dataset.image_root={data}", f"DataLoader.Train.dataset.cls_label_path={train_list}",
        f"DataLoader.Train.sampler.batch_size={args.batch}", f"DataLoader.Train.loader.num_workers={args.workers}",
    ]
    val_list = os.path.join(data, "val_list.txt")
    if args.eval:
        if not os.path.isfile(val_list):
            raise SystemExit(f"--eval: {val_list} is missing")
        common = [o for o in common if o != "Global.eval_during_train=False"] + [
            "Global.eval_during_train=True", "Global.eval_interval=1", f"DataLoader.Eval.dataset.image_root={data}",
            f"DataLoader.Eval.dataset.cls_label_path={val_list}", f"DataLoader.Eval.loader.num_workers={args.workers}"]
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        runs = [
            ("ppcls-lite", [sys.executable, os.path.join(REPO, "tools", "train.py"), "-c", os.path.abspath(args.config)]
             + [x for o in common + [f"Global.output_dir={work}/ours"] + args.override for x in ("-o", o)]),
            ("PaddleClas", [args.paddleclas_python, os.path.join(args.paddleclas, "tools", "train.py"), "-c", theirs]
             + [x for o in common + [f"Global.output_dir={work}/theirs"] for x in ("-o", o)]),
        ]
        for name, cmd in runs:
            text, wall, cpu = _run(cmd, args.paddleclas if name == "PaddleClas" else work, env)
            ips = logged_ips(text)
            evals = _eval_ips(cmd, work, val_list, env, name, cfg["Arch"]["name"]) if args.eval else None
            rows.append((name, median_ips(ips), len(ips), wall, cpu, evals))
    model = cfg["Arch"]["name"]
    print(f"{model}, {_class_count(train_list)} classes, batch {args.batch}, {args.workers} loader workers, "
          f"{args.epochs} epochs, data {data}; load average before: {load:.2f}")
    print("| trainer | median ips | iterations | wall s | CPU s | CPU / wall | eval img/s |")
    print("|---|---|---|---|---|---|---|")
    for name, ips, n, wall, cpu, evals in rows:
        shown = f"{evals:.1f}" if evals else "-"
        print(f"| {name} | {ips:.2f} | {n} | {wall:.1f} | {cpu:.1f} | {cpu / wall:.2f} | {shown} |")
    print(f"ppcls-lite / PaddleClas = {rows[0][1] / rows[1][1]:.2f}x (median ips), "
          f"wall time {rows[0][3] / rows[1][3]:.2f}x")
    if args.eval:
        print(f"evaluation throughput ppcls-lite / PaddleClas = {rows[0][5] / rows[1][5]:.2f}x")
    return 0


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--iters", type=int, default=20, help="measured iterations")
    p.add_argument("--warmup", type=int, default=5, help="iterations before measuring")
    p.add_argument("--paddleclas", help="a PaddleClas checkout: compare against its tools/train.py")
    p.add_argument("--paddleclas_config", help="its recipe (default: the same path under ppcls/configs)")
    p.add_argument("--paddleclas_python", default=sys.executable, help="the Python that runs PaddleClas")
    p.add_argument("--data", help="data folder with train_list.txt (for --paddleclas)")
    p.add_argument("--make_data", action="store_true", help="write 245 JPEG photos and train_list.txt to --data")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--eval", action="store_true", help="a whole run: evaluate every epoch, then eval throughput")
    args = p.parse_args(argv)
    cfg = load(args)
    if args.paddleclas:
        if not args.data:
            raise SystemExit("--paddleclas needs --data DIR (a folder with train_list.txt)")
        return compare(args, cfg)
    from ppcls.engine.benchmark import bare_loop_ips, trainer_ips

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
