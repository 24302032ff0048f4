"""Inference benchmark: export each model, run the deploy predictor per backend and batch size.

python tools/benchmark_inference.py [--models PPLCNet_x0_25,PPLCNet_x1_0] [--repeats 20]
    [--batch_sizes 1,8] [--image_size 224] [--threads 2] [--images DIR] [--output docs/benchmarks.md]
    [--backends paddle+oneDNN,paddle,onnxruntime,onnxruntime+int8,openvino,openvino+int8]
    [--skip_overhead] [--section inference-benchmark]

For every model (random weights, BatchNorm statistics from the photos, class_num 1000): export
with ONNX, check the predictor against the eager forward (max abs difference of the
probabilities), then time the whole
predictor call (decode, resize, normalise, inference, top-k) for Paddle Inference with oneDNN,
without it, and ONNX Runtime, at each batch size: median of ``--repeats``. It also times raw
ONNX Runtime (forward only, ``--threads`` threads, batch 1) and the predictor's preprocessing
per image (the predictor's and a hand-written OpenCV one), in alternating rounds, and reports
the predictor's batch-1 call against raw ORT + preprocessing. The
table goes to ``--output`` between the ``--section`` markers (the rest of the file is kept).

The ``+int8`` settings run ``inference_int8.onnx``, quantized by ``deploy/python/quantize.py`` with its
defaults, calibrated on the photos (random weights: the INT8 scores' distance to the eager model is
the quantization error of an untrained network, a timing run, not an accuracy figure; accuracy is
measured on trained models with ``tools/quantize.py --eval``). With INT8 or OpenVINO settings a
summary table says per model which setting is fastest at batch 1 and the INT8/fp32 and
OpenVINO/ONNX Runtime time ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import numpy as np  # noqa: E402

from ppcls.utils.errors import ArgumentError, summarize  # noqa: E402

DEFAULT_SECTION = "inference-benchmark"
BACKENDS = {  # label -> Global overrides of the deploy predictor
    "paddle+oneDNN": {"backend": "paddle", "enable_mkldnn": True},
    "paddle": {"backend": "paddle", "enable_mkldnn": False},
    "onnxruntime": {"backend": "onnxruntime"},
    "onnxruntime+int8": {"backend": "onnxruntime", "precision": "int8"},
    "openvino": {"backend": "openvino"},
    "openvino+int8": {"backend": "openvino", "precision": "int8"},
}
DEFAULT_BACKENDS = ("paddle+oneDNN", "paddle", "onnxruntime")


def markers(section: str) -> tuple[str, str]:
    """The comment lines around a section of the benchmarks file."""
    return f"<!-- {section}:start -->", f"<!-- {section}:end -->"


MARK_START, MARK_END = markers(DEFAULT_SECTION)
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")  # the default photos (scikit-image ships them)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="", help="comma-separated names (default: every registered model)")
    p.add_argument("--backends", default=",".join(DEFAULT_BACKENDS), help=f"subset of {', '.join(BACKENDS)}")
    p.add_argument("--skip_overhead", action="store_true",
                   help="leave out the predictor-overhead check (raw ORT against the predictor, streams)")
    p.add_argument("--section", default=DEFAULT_SECTION,
                   help="the markers in --output the table goes between (default: %(default)s)")
    p.add_argument("--batch_sizes", default="1,8")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per setting (the median is reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=10,
                   help="overhead check: alternating rounds over raw ORT, preprocessing and the predictor")
    p.add_argument("--overhead_repeats", type=int, default=5, help="overhead check: calls per photo per round")
    p.add_argument("--stream_images", type=int, default=12,
                   help="overhead check: files in the folder run through stream.predict_files")
    p.add_argument("--budget", type=float, default=10.0,
                   help="seconds of timed calls per setting (per round in the overhead check); at least 3 calls")
    p.add_argument("--image_size", type=int, default=224)
    p.add_argument("--class_num", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--images", default=None, help="folder of photos (default: scikit-image's "
                                                    f"{', '.join(SKIMAGE_PHOTOS)}; the tables in docs/benchmarks.md "
                                                    "name the folder they used)")
    p.add_argument("--output", default=os.path.join("docs", "benchmarks.md"))
    p.add_argument("--no_write", action="store_true", help="print the table only")
    p.add_argument("--note", default="", help="a line printed under the table (e.g. machine load)")
    return p.parse_args(argv)


def timings(fn: Callable[[], Any], repeats: int, warmup: int, budget: float = float("inf")) -> float:
    """Median milliseconds of up to ``repeats`` calls after ``warmup`` untimed ones.

    Calls stop early once they have taken ``budget`` seconds (at least 3 are timed), so slow
    models (ParNet_XL without oneDNN at batch 8) do not take hours.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max(1, repeats) and (len(times) < 3 or time.perf_counter() - start < budget):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000.0 * statistics.median(times)


def photo_bytes(folder: str | None, workdir: str) -> list[bytes]:
    """JPEG bytes of real photos: those in ``folder``, else scikit-image's :data:`SKIMAGE_PHOTOS`."""
    if folder:
        from deploy.python.utils import list_images

        paths = list_images(folder)
    else:
        import cv2
        from skimage import data

        paths = []
        for name in SKIMAGE_PHOTOS:
            path = os.path.join(workdir, f"{name}.jpg")
            cv2.imwrite(path, getattr(data, name)()[:, :, ::-1])
            paths.append(path)
    out = []
    for path in paths:
        with open(path, "rb") as f:
            out.append(f.read())
    return out


def eval_ops(size: int) -> list[dict]:
    return [
        {"DecodeImage": {"to_rgb": True, "channel_first": False}},
        {"ResizeImage": {"resize_short": int(round(size * 256 / 224))}},
        {"CropImage": {"size": size}},
        {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                            "order": ""}},
        {"ToCHWImage": None},
    ]


def count_flops_or_none(model: Any, size: int) -> float | None:
    try:
        from ppcls.utils.flops import count_flops
    except ImportError:
        return None
    return float(count_flops(model, [1, 3, size, size]))


MEAN = np.asarray([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.asarray([0.229, 0.224, 0.225], dtype=np.float32)


def reference_preprocess(data: bytes, size: int) -> np.ndarray:
    """The eval preprocessing as a user writes it with OpenCV and NumPy: a [1, 3, size, size] batch."""
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    scale = round(size * 256 / 224) / min(h, w)
    img = cv2.resize(img, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_LINEAR)
    top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    img = img[top:top + size, left:left + size]
    x = (img.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


class Task(NamedTuple):
    """Calls to time (one per photo), how many per photo in a round, and images per call."""

    calls: list[Callable[[], Any]]
    repeats: int
    images: int = 1


def interleaved(tasks: dict[str, Task], rounds: int, budget: float = float("inf")) -> list[dict[str, float]]:
    """Per round, the median ms per image of each task.

    Every round runs each task's block in turn (first one untimed call per photo: the previous
    task's ONNX Runtime workers may still be spinning on the other core for a moment), so slow
    drifts of the machine hit every task of a round alike; ratios are then taken within a round.
    """
    per_round = []
    for _ in range(max(1, rounds)):
        per_round.append({
            key: statistics.median(timings(fn, task.repeats, 1, budget / len(task.calls)) for fn in task.calls)
            / task.images
            for key, task in tasks.items()
        })
    return per_round


def overhead_check(folder: str, images: list[bytes], args: argparse.Namespace, make_predictor: Callable[..., Any],
                   workdir: str) -> dict:
    """Batch-1 cost per image of the predictor (ONNX Runtime) against raw ONNX Runtime + preprocessing.

    Raw ONNX Runtime is a session with default options and ``--threads`` intra-op threads, run
    on the ready input (forward only). Preprocessing is timed two ways: the predictor's own and
    :func:`reference_preprocess` (OpenCV + NumPy as written by hand); both must give the same
    input. *pipeline* times the hand-written preprocessing and ``session.run`` in one call. The
    predictor is timed per call (``predict([image])``) and per image over a folder of files
    (``stream.predict_files``, which reads the files too) four ways: sequential with
    ``--threads`` threads, prefetching with 1 thread and with ``--threads`` threads, and
    ``--threads`` workers (``Global.workers``) of 1 thread each.
    """
    import onnxruntime as ort

    from deploy.python.stream import predict_files

    size = args.image_size
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(os.path.join(folder, "inference.onnx"), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    pred = make_predictor({"backend": "onnxruntime"}, 1)
    pred_1t = make_predictor({"backend": "onnxruntime", "cpu_num_threads": 1}, 1)
    inputs = [reference_preprocess(img, size) for img in images]
    own = [pred.preprocess.batch([img]).copy() for img in images]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(inputs, own))
    if diff > 1e-5:
        raise RuntimeError(f"the predictor's preprocessing differs from the reference by {diff:.2e}")
    files = []
    for i in range(args.stream_images):
        files.append(os.path.join(workdir, f"stream_{i:03d}.jpg"))
        with open(files[-1], "wb") as f:
            f.write(images[i % len(images)])
    n = args.overhead_repeats
    tasks = {
        "raw_ort_ms": Task([lambda x=x: sess.run(None, {name: x}) for x in inputs], n),
        "preprocess_ms": Task([lambda img=img: pred.preprocess.batch([img]) for img in images], n),
        "reference_preprocess_ms": Task([lambda img=img: reference_preprocess(img, size) for img in images], n),
        "pipeline_ms": Task([lambda img=img: sess.run(None, {name: reference_preprocess(img, size)}) for img in images],
                            n),
        "predictor_ms": Task([lambda img=img: pred.predict([img]) for img in images], n),
        "stream_sequential_ms": Task([lambda: predict_files(pred, files, prefetch=False)], 1, len(files)),
        "stream_prefetch_1t_ms": Task([lambda: predict_files(pred_1t, files, prefetch=True)], 1, len(files)),
        "stream_prefetch_ms": Task([lambda: predict_files(pred, files, prefetch=True)], 1, len(files)),
        "stream_workers_ms": Task([lambda: predict_files(pred_1t, files, workers=args.threads)], 1, len(files)),
    }
    per_round = interleaved(tasks, args.rounds, args.budget)
    out: dict[str, Any] = {k: statistics.median(r[k] for r in per_round) for k in tasks}
    streams = ("stream_sequential_ms", "stream_prefetch_1t_ms", "stream_prefetch_ms", "stream_workers_ms")
    out["stream_best"] = min(streams, key=lambda k: out[k])

    def ratios(value: Callable[[dict], float], base: Callable[[dict], float]) -> tuple[float, float]:
        """Within each round, then (median, worst) over the rounds."""
        values = [value(r) / base(r) for r in per_round]
        return statistics.median(values), max(values)

    def opencv_parts(r: dict) -> float:
        return r["raw_ort_ms"] + r["reference_preprocess_ms"]

    def own_parts(r: dict) -> float:
        return r["raw_ort_ms"] + r["preprocess_ms"]

    def predictor_call(r: dict) -> float:
        return r["predictor_ms"]

    def best_stream(r: dict) -> float:
        return r[out["stream_best"]]

    out["ratio_opencv"] = ratios(predictor_call, opencv_parts)
    out["ratio_own"] = ratios(predictor_call, own_parts)
    out["ratio_pipeline"] = ratios(predictor_call, lambda r: r["pipeline_ms"])
    # what interleaving costs any pipeline: the hand-written call against its two parts timed apart
    out["pipeline_vs_parts"] = ratios(lambda r: r["pipeline_ms"], opencv_parts)
    out["stream_ratio_opencv"] = ratios(best_stream, opencv_parts)
    out["stream_ratio_own"] = ratios(best_stream, own_parts)
    return out


def calibrate_batchnorm(model: Any, x: np.ndarray) -> None:
    """Set every BatchNorm's running statistics from one train-mode pass over ``x``.

    With random weights the activations grow with depth (ParNet's logits reach hundreds), so
    comparing probabilities would only measure float32 rounding inside a saturated softmax; with
    statistics taken from real photos the logits have the scale of a trained model's.
    """
    import paddle
    from paddle.nn.layer.norm import _BatchNormBase

    bns = [m for m in model.sublayers() if isinstance(m, _BatchNormBase)]
    momenta = [bn._momentum for bn in bns]
    for bn in bns:
        bn._momentum = 0.0  # running = this batch's statistics
    model.train()
    with paddle.no_grad():
        model(paddle.to_tensor(x))
    for bn, momentum in zip(bns, momenta):
        bn._momentum = momentum
    model.eval()


def bench_model(name: str, args: argparse.Namespace, images: list[bytes], workdir: str) -> dict:
    import paddle
    import paddle.nn.functional as F

    from deploy.python.predictor import ClsPredictor
    from ppcls.arch import build_model
    from ppcls.engine.export import export_model

    size = args.image_size
    model = build_model({"name": name, "class_num": args.class_num})
    calibrate_batchnorm(model, np.concatenate([reference_preprocess(img, size) for img in images]))
    params = sum(int(p.size) for p in model.parameters() if not p.stop_gradient)
    flops = count_flops_or_none(model, size)
    folder = export_model(model, os.path.join(workdir, name), [3, size, size], name, args.class_num,
                          transform_ops=eval_ops(size), export_type="onnx")
    if any(BACKENDS[label].get("precision") == "int8" for label in args.backend_list):
        quantize_with_photos(folder, images, workdir)

    def predictor(overrides: dict, batch: int) -> ClsPredictor:
        g = {"inference_model_dir": folder, "batch_size": batch, "cpu_num_threads": args.threads, **overrides}
        return ClsPredictor({"Global": g})

    # sanity: the deployed graph against the eager model on the same preprocessed photos
    ref_pred = predictor(BACKENDS["onnxruntime"], len(images))
    x = ref_pred.preprocess.batch(images).copy()
    with paddle.no_grad():
        eager = F.softmax(model(paddle.to_tensor(x)), axis=-1).numpy()
    row: dict = {"model": name, "params": params, "flops": flops, "eager_diff": {}, "latency": {}}
    # the overhead check: raw ONNX Runtime + preprocessing against the predictor, before any Paddle
    # predictor (and its threads) exists
    if not args.skip_overhead:
        row.update(overhead_check(folder, images, args, predictor, workdir))
    for label in args.backend_list:
        p = predictor(BACKENDS[label], len(images))
        row["eager_diff"][label] = float(np.abs(p.backend.run(x) - eager).max())
        del p

    for label in sorted(args.backend_list, key=lambda b: b != "onnxruntime"):
        for bs in args.batch_list:
            p = predictor(BACKENDS[label], bs)
            if bs == 1:  # photo by photo
                row["latency"][(label, bs)] = statistics.median(
                    timings(lambda p=p, img=img: p.predict([img]), args.repeats, args.warmup, args.budget / len(images))
                    for img in images)
            else:
                batch = [images[i % len(images)] for i in range(bs)]
                row["latency"][(label, bs)] = timings(lambda p=p, batch=batch: p.predict(batch), args.repeats,
                                                      args.warmup, args.budget)
            del p

    b1 = {label: row["latency"][(label, 1)] for label in args.backend_list if (label, 1) in row["latency"]}
    if b1:
        best = min(b1, key=b1.get)
        row["best_b1"] = (best, b1[best])
    return row


def quantize_with_photos(folder: str, images: list[bytes], workdir: str) -> None:
    """``folder/inference_int8.onnx`` with the default settings, calibrated on the photos."""
    from deploy.python.quantize import QuantOptions, load_calibration, quantize_folder

    paths = []
    for i, data in enumerate(images):
        paths.append(os.path.join(workdir, f"calib_{i:02d}.jpg"))
        with open(paths[-1], "wb") as f:
            f.write(data)
    quantize_folder(folder, load_calibration(folder, paths, [0] * len(paths), len(paths), "the benchmark photos"),
                    QuantOptions())


def summary_table(rows: list[dict], args: argparse.Namespace) -> list[str]:
    """Per model: the fastest batch-1 setting, INT8 / fp32 and OpenVINO / ONNX Runtime time ratios."""
    pairs = [("onnxruntime+int8", "onnxruntime", "INT8/fp32 (ORT)"), ("openvino+int8", "openvino", "INT8/fp32 (OpenVINO)"),
             ("openvino", "onnxruntime", "OpenVINO/ORT (fp32)"), ("openvino+int8", "onnxruntime", "OpenVINO INT8/ORT fp32")]
    pairs = [p for p in pairs if p[0] in args.backend_list and p[1] in args.backend_list]
    if not pairs:
        return []
    lines = ["", "Batch 1, per model: the fastest setting, and time ratios (below 1.00: the first is faster; "
             "INT8 above 1.00 means INT8 loses).", "",
             "| Model | fastest b1 setting | ms | " + " | ".join(p[2] for p in pairs) + " |",
             "|---|---|---|" + "---|" * len(pairs)]
    for r in rows:
        b1 = {label: r["latency"][(label, 1)] for label in args.backend_list if (label, 1) in r["latency"]}
        if not b1:
            continue
        best = min(b1, key=b1.get)
        cells = [r["model"], best, f"{b1[best]:.2f}"]
        cells += [f"{b1[a] / b1[b]:.2f}" if a in b1 and b in b1 else "-" for a, b, _ in pairs]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else the machine type. Not ``platform.processor()``: it runs
    ``uname -p`` in a subprocess, and a child exiting inside a process whose Paddle DataLoader workers
    installed Paddle's SIGCHLD handler was seen to take the whole process down with SIGSEGV."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _fmt_count(v: float | None, scale: float) -> str:
    return "-" if v is None else f"{v / scale:.3g}"


def photos_label(folder: str | None) -> str:
    """How the table names its photos: the folder given, or scikit-image's."""
    return f"`--images {folder}`" if folder else "scikit-image's " + ", ".join(SKIMAGE_PHOTOS)


def render(rows: list[dict], args: argparse.Namespace, started: str) -> str:
    show_flops = any(r.get("flops") is not None for r in rows)
    lines = [
        "## Inference benchmark (deploy predictor)",
        "",
        f"Written by `tools/benchmark_inference.py` on {started}. Machine: {os.cpu_count()} CPU cores "
        f"({cpu_name()}), Python {platform.python_version()}; "
        f"{args.threads} threads, input {args.image_size}x{args.image_size}, class_num {args.class_num}, random "
        f"weights with BatchNorm statistics taken from the photos ({photos_label(args.images)}); median of {args.repeats} calls (or {args.budget:g} s of calls, at least 3) after {args.warmup} "
        "warm-up calls. Latency is one whole "
        "predictor call per batch: JPEG decode, resize, crop, normalise, inference and top-k. Other processes "
        "may have been running on the machine, so treat small differences as noise.",
        "",
    ]
    if args.note:
        lines += [args.note, ""]
    head = ["Model", "Params (M)"] + (["FLOPs (G, multiply-adds)"] if show_flops else []) + ["Backend"]
    for bs in args.batch_list:
        head += [f"b{bs} ms/batch", f"b{bs} QPS"]
    head.append("max abs diff vs eager")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        for label in args.backend_list:
            cells = [r["model"], _fmt_count(r["params"], 1e6)] + ([_fmt_count(r.get("flops"), 1e9)] if show_flops else [])
            cells.append(label)
            for bs in args.batch_list:
                ms = r["latency"].get((label, bs))
                cells += ["-", "-"] if ms is None else [f"{ms:.2f}", f"{1000.0 * bs / ms:.1f}"]
            cells.append(f"{r['eager_diff'].get(label, float('nan')):.1e}")
            lines.append("| " + " | ".join(cells) + " |")
    lines += summary_table(rows, args)
    if args.skip_overhead:
        return "\n".join(lines)
    lines += [
        "",
        f"Predictor overhead check (batch 1, photo by photo, {args.rounds} rounds; in each round every column "
        f"runs a block of up to {args.overhead_repeats} calls per photo in turn, so drifts of the machine hit all "
        "columns of a round alike). *raw ORT* is ONNX Runtime with default session options and "
        f"{args.threads} threads, forward only on the ready input of the exported `inference.onnx`. Preprocessing "
        "(decode, resize, crop, normalise) is timed as the predictor does it and as written by hand with OpenCV + "
        "NumPy (`reference_preprocess` in the tool, same result). *hand-written call* is that preprocessing and "
        "`session.run` in one call. *predictor call* is one `ClsPredictor.predict([image])` with the ONNX Runtime "
        "backend, decode to top-k. Times are medians over the rounds; a ratio is taken within each round, then "
        "the median over the rounds (in brackets: the worst round). A ratio of at most 1.00 means the predictor "
        "costs no more than the raw forward plus that preprocessing timed apart.",
        "",
        "| Model | raw ORT forward ms | predictor preprocess ms | OpenCV preprocess ms | hand-written call ms | "
        "predictor call ms | ratio to raw + OpenCV preprocess | ratio to raw + predictor preprocess | "
        "ratio to hand-written call | hand-written call / its parts apart | fastest b1 backend in the table above |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "predictor_ms" not in r:
            continue
        cells = [r["model"]] + [f"{r[k]:.2f}" for k in ("raw_ort_ms", "preprocess_ms", "reference_preprocess_ms",
                                                         "pipeline_ms", "predictor_ms")]
        cells += [f"{r[k][0]:.2f} ({r[k][1]:.2f})" for k in ("ratio_opencv", "ratio_own", "ratio_pipeline",
                                                               "pipeline_vs_parts")]
        cells.append(f"{r['best_b1'][0]} ({r['best_b1'][1]:.2f} ms)" if "best_b1" in r else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"A folder of {args.stream_images} photo files through `deploy/python/stream.py` (what `predict_cls.py` "
        "runs), batch 1, ms per image including reading the file: sequential with "
        f"{args.threads} threads; with `Global.prefetch` (the next image is decoded on a second thread "
        f"while the current one runs) with 1 and with {args.threads} inference threads; and with "
        f"`Global.workers={args.threads}` (each worker thread reads, decodes and runs its own images with 1 "
        "inference thread, on one shared ONNX Runtime session). The same "
        f"{args.threads} cores in every column, every image a batch-1 forward. The ratios compare the fastest "
        "of the four (in bold) with raw ONNX Runtime plus preprocessing, timed apart as above.",
        "",
        "| Model | sequential ms/img | prefetch, 1 thread | prefetch, "
        f"{args.threads} threads | {args.threads} workers x 1 thread | fastest / (raw ORT + OpenCV preprocess) | "
        "fastest / (raw ORT + predictor preprocess) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "stream_best" not in r:
            continue
        cells = [r["model"]]
        for k in ("stream_sequential_ms", "stream_prefetch_1t_ms", "stream_prefetch_ms", "stream_workers_ms"):
            cells.append(f"**{r[k]:.2f}**" if k == r["stream_best"] else f"{r[k]:.2f}")
        cells += [f"{r[k][0]:.2f} ({r[k][1]:.2f})" for k in ("stream_ratio_opencv", "stream_ratio_own")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_section(path: str, body: str, section_name: str = DEFAULT_SECTION) -> None:
    """Replace the text between the markers in ``path`` (create the file or the section if missing)."""
    from deploy.python.utils import atomic_write_text

    start_mark, end_mark = markers(section_name)
    section = f"{start_mark}\n{body.rstrip()}\n{end_mark}"
    text = ""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    start, end = text.find(start_mark), text.find(end_mark)
    if start != -1 and end != -1 and end > start:
        text = text[:start] + section + text[end + len(end_mark):]
    elif start != -1 or end != -1:
        raise ArgumentError(f"{path}: only one of the markers {start_mark} / {end_mark} is present; fix the file by hand")
    else:
        if not text:
            text = "# Benchmarks\n"
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    atomic_write_text(path, text)


def _builds_with_defaults(name: str) -> bool:
    """Registry entries needing arguments (e.g. the un-sized ``PPLCNet(scale=...)``) are left out of "all"."""
    import inspect

    from ppcls.registry import MODELS

    params = inspect.signature(MODELS.get(name)).parameters.values()
    required = [p.name for p in params if p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if required:
        print(f"skipping {name}: it needs the argument(s) {', '.join(required)}")
    return not required


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import ppcls.arch  # noqa: F401  (registers the models)
    from ppcls.registry import MODELS

    names = [n.strip() for n in args.models.split(",") if n.strip()] or [
        n for n in MODELS.names() if _builds_with_defaults(n)
    ]
    for n in names:
        MODELS.get(n)  # unknown names fail now, with suggestions
    args.backend_list = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in args.backend_list:
        if b not in BACKENDS:
            raise ArgumentError(f"--backends: unknown backend {summarize(b)}; expected a subset of {', '.join(BACKENDS)}")
    args.batch_list = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    started = time.strftime("%Y-%m-%d %H:%M")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_infer_") as workdir:
        images = photo_bytes(args.images, workdir)
        for name in names:
            t = time.time()
            row = bench_model(name, args, images, workdir)
            rows.append(row)
            lat = ", ".join(f"{k[0]} b{k[1]}: {v:.2f} ms" for k, v in row["latency"].items())
            overhead = "" if args.skip_overhead else (
                f"; raw ORT {row['raw_ort_ms']:.2f} ms + preprocess {row['preprocess_ms']:.2f} ms "
                f"(OpenCV {row['reference_preprocess_ms']:.2f} ms); predictor {row['predictor_ms']:.2f} ms")
            print(f"{name}: {lat}{overhead}; max diff vs eager {max(row['eager_diff'].values()):.1e} "
                  f"({time.time() - t:.0f} s)", flush=True)
    table = render(rows, args, started)
    print(table)
    if not args.no_write:
        write_section(args.output, table, args.section)
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    from ppcls.utils.cli import run_tool

    run_tool(main)
