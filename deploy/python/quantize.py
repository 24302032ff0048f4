"""INT8 post-training quantization of an exported ONNX model (ONNX Runtime, QDQ format).

Stands alone (no ``ppcls`` or ``paddle`` import): it needs only ``onnx``, ``onnxruntime`` and this
folder, so it runs beside an exported model copied to a server. ``tools/quantize.py`` drives it
from a training config; with only an exported folder::

    python deploy/python/quantize.py --model_dir DIR (--calib_dir IMAGES | --calib_list FILE)
        [--calib_num 256] [--per_channel | --no-per_channel] [--symmetric_activations]
        [--calib_method percentile|minmax|entropy] [--keep_fp32 Gemm,Conv,NODE_NAME]
        [--pre_process | --no-pre_process] [--eval_list LABELLED_LIST [--eval_backend onnxruntime|openvino]]

What it does:

* calibration images are taken through the model's own preprocessing (``PreProcess.transform_ops`` of
  ``DIR/inference.yml``, :class:`~deploy.python.preprocess.Preprocessor`); images that cannot be
  decoded are skipped (a few named, the rest counted), and an error is raised when none remain;
* at most ``calib_num`` images are chosen deterministically by :func:`spread_selection`: the images
  are grouped by class (the list's label, or the first sub-folder under ``--calib_dir``), each class
  gets an equal share (the remainder to the first classes), and within a class the images are taken
  evenly spaced over its sorted list - so a capped calibration set spans every class and the same
  inputs always give the same set;
* :func:`quantize_model` calls ``onnxruntime.quantization.quantize_static``: QDQ format, int8
  weights (symmetric, per output channel by default), uint8 asymmetric activations by default or
  int8 symmetric ones (``symmetric_activations``), a Percentile (default) / MinMax / Entropy calibration; ops
  (by type, e.g. ``Gemm``) or nodes (by name) listed in ``keep_fp32`` stay in float;
* ``DIR/inference_int8.onnx`` is written atomically (a temporary file in ``DIR``, then
  ``os.replace``): a failure leaves no partial file and keeps an earlier good one;
* :func:`update_inference_yml` rewrites ``DIR/inference.yml`` atomically, keeping what it held and
  adding ``Global.int8_model`` and a ``Quantization`` section with the settings used.

The defaults - ``quant_pre_process`` first, int8 weights per channel, uint8 asymmetric activations,
Percentile calibration (onnxruntime's calibrator at its default 99.999 %: the range drops the
rarest outliers of each activation's histogram), nothing kept in float - were chosen by measured accuracy on the two trained quick-start models, digits and
faces (deploy/README.md, "INT8 and OpenVINO", has the figures and the alternatives tried). ``entropy``
gives the same model as MinMax with onnxruntime 1.32: ``quantize_static`` gives its entropy
calibrator as many histogram bins as quantized bins (128), so the best threshold is the whole range.
onnxruntime's calibrators hold every activation of every calibration batch in memory until the
end: keep ``calib_num`` modest for large inputs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml

if not __package__:  # run by path, not imported: "Scripts" in deploy/python/__init__.py says why
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [os.path.dirname(os.path.dirname(_here)), *(p for p in sys.path if os.path.abspath(p or ".") != _here)]

from deploy.python.errors import (  # noqa: E402
    DeployConfigError,
    DeployFileError,
    ImageInputError,
    MissingPackageError,
    ModelLoadError,
    bounded,
    few,
    run_cli,
    short,
)
from deploy.python.predictor import INFO_FILE, INT8_ONNX_FILE, ONNX_FILE  # noqa: E402
from deploy.python.preprocess import Preprocessor  # noqa: E402
from deploy.python.utils import list_named_images  # noqa: E402

logger = logging.getLogger(__name__)

CALIB_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_CALIB_NUM = 256
SHOWN = 5  # files named in a message; the rest are counted
CALIB_BATCH = 16  # images per calibration run of the augmented model, at most (see calibration_batch)


@dataclass
class QuantOptions:
    """How to quantize (see the module docstring for the defaults and why)."""

    per_channel: bool = True
    symmetric_activations: bool = False  # int8 symmetric activations, else uint8 asymmetric
    calib_method: str = "percentile"
    keep_fp32: Sequence[str] = ()  # op types (Conv, MatMul, Gemm, ...) or node names left in float
    pre_process: bool = True  # onnxruntime's quant_pre_process (shape inference + fusions) first

    def check(self) -> None:
        if self.calib_method not in CALIB_METHODS:
            raise DeployConfigError(
                f"--calib_method: expected one of {', '.join(CALIB_METHODS)}, got {short(self.calib_method)}")


@dataclass
class CalibrationSet:
    """Preprocessed calibration inputs and where they came from (recorded in inference.yml)."""

    arrays: np.ndarray  # N x C x H x W float32
    source: str
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def parse_keep_fp32(text: str | Sequence[str] | None) -> list[str]:
    """``"Gemm, MatMul"`` → ``["Gemm", "MatMul"]`` (empty items dropped)."""
    if not text:
        return []
    items = text.split(",") if isinstance(text, str) else [p for t in text for p in str(t).split(",")]
    return [t.strip() for t in items if t.strip()]


def check_calib_num(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DeployConfigError(f"--calib_num: expected a positive integer (images at most), got {short(value)}")
    return value


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or an error naming the pip command."""
    try:
        import onnxruntime
        from onnxruntime import quantization  # noqa: F401
    except ImportError:
        raise MissingPackageError("INT8 quantization needs the onnxruntime package: pip install onnxruntime") from None
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise MissingPackageError("INT8 quantization needs the onnx package: pip install onnx") from None
    return onnxruntime


# ----------------------------------------------------------------------------- calibration images


def list_images(folder: str, where: str = "--calib_dir") -> tuple[list[str], list[str]]:
    """(image paths, their group) under ``folder``, recursively, sorted; the group is the first sub-folder."""
    if not folder or not os.path.isdir(folder):
        raise DeployFileError(f"{where}: no such folder: {folder}")
    named = list_named_images(folder, where)
    return [p for p, _ in named], [n.split(os.sep)[0] if os.sep in n else "" for _, n in named]


def read_image_list(list_path: str, roots: Sequence[str], where: str = "--calib_list") -> tuple[list[str], list[str]]:
    """(paths, labels) of a PaddleClas list (``path label`` lines; the label is the last field).

    A relative path is looked up under each of ``roots`` in turn (the first where it exists wins);
    files found under none are named (the first few and how many) in one error.
    """
    if not list_path or not os.path.isfile(list_path):
        raise DeployFileError(f"{where}: no such file: {list_path}")
    paths: list[str] = []
    labels: list[str] = []
    missing: list[str] = []
    with open(list_path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            parts = line.rsplit(None, 1)
            rel, label = (parts[0], parts[1]) if len(parts) == 2 else (parts[0], "")
            found = next((os.path.join(r, rel) for r in roots if os.path.isfile(os.path.join(r, rel))), None)
            if found is None:
                missing.append(f"{rel} (line {lineno})")
                continue
            paths.append(found)
            labels.append(label)
    if missing:
        raise DeployFileError(
            f"{where}: {list_path} names {len(missing)} image(s) that do not exist (looked under "
            f"{', '.join(roots)}): {few(missing, SHOWN)}")
    if not paths:
        raise DeployFileError(f"{where}: {list_path} lists no images (expected 'relative/path label' lines)")
    return paths, labels


def spread_selection(groups: Sequence[Any], num: int) -> list[int]:
    """Indices of at most ``num`` items spanning ``groups``: equal shares per group, evenly spaced within.

    Groups in sorted order each get ``num // k`` items (the first ``num % k`` one more); a group with
    fewer items gives all of them and the rest goes to the others. Deterministic: no random state.
    """
    check_calib_num(num)
    by_group: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    if len(groups) <= num:
        return list(range(len(groups)))
    keys = sorted(by_group, key=str)
    quota = dict.fromkeys(keys, 0)
    left = num
    open_keys = list(keys)
    while left > 0 and open_keys:  # water-filling: small groups give their spare share to the others
        share, extra = divmod(left, len(open_keys))
        for n, k in enumerate(open_keys):
            quota[k] += min(share + (n < extra), len(by_group[k]) - quota[k])
        left = num - sum(quota.values())
        open_keys = [k for k in open_keys if quota[k] < len(by_group[k])]
    chosen: list[int] = []
    for k in keys:
        items, q = by_group[k], quota[k]
        if q:
            chosen.extend(items[int(j)] for j in np.floor((np.arange(q) + 0.5) * len(items) / q))
    return sorted(chosen)


def preprocess_files(paths: Sequence[str], transform_ops: Any, where: str) -> tuple[np.ndarray, list[int], list[str]]:
    """(N x C x H x W float32, indices of the decoded files, skipped files with their reason).

    Undecodable or unreadable files are skipped (a bounded warning); none left is an error.
    """
    pre = Preprocessor(transform_ops)
    arrays: list[np.ndarray] = []
    kept: list[int] = []
    skipped: list[str] = []
    for i, path in enumerate(paths):
        try:
            with open(path, "rb") as f:
                arrays.append(np.asarray(pre(f.read()), dtype=np.float32))
            kept.append(i)
        except (ImageInputError, OSError) as e:
            skipped.append(f"{path} ({bounded(str(e), 120, 1)})")
    if skipped:
        logger.warning("%s: skipped %d of %d image(s) that cannot be decoded: %s", where, len(skipped), len(paths),
                       few(skipped, SHOWN))
    if not arrays:
        raise ImageInputError(f"{where}: none of the {len(paths)} image(s) could be decoded: {few(skipped, SHOWN)}")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DeployConfigError(
            f"{where}: the preprocessing gives inputs of several shapes ({few(sorted(shapes), 3)}); "
            "calibration needs a fixed-size ResizeImage/CropImage in PreProcess.transform_ops")
    return np.stack(arrays), kept, skipped


def load_calibration(model_dir: str, paths: Sequence[str], groups: Sequence[Any], num: int,
                     source: str) -> CalibrationSet:
    """At most ``num`` of ``paths`` (:func:`spread_selection` over ``groups``), preprocessed as the model's."""
    picked = spread_selection(groups, num)
    files = [paths[i] for i in picked]
    ops = read_info(model_dir).get("PreProcess", {}).get("transform_ops")
    if not ops:
        raise DeployConfigError(f"{os.path.join(model_dir, INFO_FILE)}: no PreProcess.transform_ops to "
                                "preprocess the calibration images with")
    arrays, kept, skipped = preprocess_files(files, ops, source)
    return CalibrationSet(arrays, source, [files[i] for i in kept], skipped)


# ----------------------------------------------------------------------------- quantization


def read_info(model_dir: str) -> dict:
    path = os.path.join(model_dir, INFO_FILE)
    if not os.path.isfile(path):
        raise DeployFileError(f"{path} is missing: export the model first (tools/export_model.py)")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise DeployConfigError(f"{path}: not valid YAML: {bounded(str(e), 300, 3)}") from None
    if not isinstance(data, dict):
        raise DeployConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def calibration_batch(count: int, most: int = CALIB_BATCH) -> int:
    """The largest batch of at most ``most`` images that splits ``count`` into equal batches.

    onnxruntime's histogram calibrators (Percentile, Entropy) stack each activation over the batches
    and fail on a shorter last batch, so every batch must have the same size.
    """
    return max(d for d in range(1, max(1, min(most, count)) + 1) if count % d == 0)


def _calibration_reader(arrays: np.ndarray, input_name: str, batch: int) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class ArrayReader(CalibrationDataReader):
        """Batches of preprocessed arrays, as ``quantize_static`` asks for them."""

        def __init__(self) -> None:
            self.start = 0

        def get_next(self) -> dict | None:
            if self.start >= len(arrays):
                return None
            chunk = arrays[self.start:self.start + batch]
            self.start += batch
            return {input_name: np.ascontiguousarray(chunk, dtype=np.float32)}

        def rewind(self) -> None:
            self.start = 0

    return ArrayReader()


def _name_nodes(model: Any) -> None:
    """Give unnamed nodes a stable name (``<OpType>_<index>``): exclusion works by name."""
    used = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)


def resolve_keep_fp32(model: Any, keep: Sequence[str], original: Any = None) -> list[str]:
    """Node names to leave in float: every node of a listed op type (case-insensitive) or a listed name.

    ``model`` is the graph that is quantized; ``original`` the exported one when ``quant_pre_process``
    changed it (a token found only there was fused away, and the message says so).
    """
    nodes = list(model.graph.node)
    types = {n.op_type.lower(): n.op_type for n in nodes}
    names = {n.name for n in nodes}
    out: list[str] = []
    unknown = []
    for token in keep:
        if token in names:
            out.append(token)
        elif token.lower() in types:
            out.extend(n.name for n in nodes if n.op_type.lower() == token.lower())
        else:
            unknown.append(token)
    if unknown:
        if original is not None:
            before = {n.name for n in original.graph.node} | {n.op_type.lower() for n in original.graph.node}
            fused = [t for t in unknown if t in before or t.lower() in before]
            if fused:
                raise DeployConfigError(
                    f"--keep_fp32: {few(fused, SHOWN)} is in the exported model but not after onnxruntime's "
                    "quant_pre_process, which fuses nodes (Conv+Add into Conv, MatMul+Add into Gemm, with new "
                    f"names); its op types are then {', '.join(sorted(set(types.values())))}: name those, or pass "
                    "--no-pre_process")
        raise DeployConfigError(
            f"--keep_fp32: {few(unknown, SHOWN)} is neither an op type nor a node name of the model; "
            f"its op types are {', '.join(sorted(set(types.values())))}; node names are e.g. "
            f"{few([n.name for n in nodes], 4)}")
    return list(dict.fromkeys(out))


def _atomic_target(path: str) -> tuple[int, str]:
    folder = os.path.dirname(os.path.abspath(path))
    return tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)


def quantize_model(fp32_path: str, out_path: str, calib: np.ndarray, options: QuantOptions,
                   quantize: Callable[..., Any] | None = None) -> dict:
    """Write the INT8 (QDQ) model of ``fp32_path`` to ``out_path`` atomically; returns the settings used.

    ``quantize``: the quantize call (``onnxruntime.quantization.quantize_static``; replaceable in tests).
    """
    ort = require_onnxruntime()
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    options.check()
    if not os.path.isfile(fp32_path):
        raise DeployFileError(f"no fp32 ONNX model {fp32_path}: export with -o Global.export_type=onnx")
    if calib.ndim != 4 or len(calib) == 0:
        raise DeployConfigError(f"calibration set: expected N x C x H x W arrays with N >= 1, got {calib.shape}")
    try:
        model = onnx.load(fp32_path)
    except Exception as e:  # a truncated or foreign file is the user's file, not a bug here
        raise ModelLoadError(f"cannot read the ONNX model {fp32_path}: {bounded(str(e), 300, 2)}") from None
    input_name = model.graph.input[0].name
    folder = os.path.dirname(os.path.abspath(out_path))
    fd, tmp = _atomic_target(out_path)
    os.close(fd)
    work = tempfile.mkdtemp(prefix=".quantize.", dir=folder)
    try:
        src = os.path.join(work, "fp32.onnx")
        original = None
        if options.pre_process:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            original = model
            quant_pre_process(model, src)
            model = onnx.load(src)
        _name_nodes(model)
        exclude = resolve_keep_fp32(model, parse_keep_fp32(options.keep_fp32), original)
        onnx.save(model, src)
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[options.calib_method]
        sym = bool(options.symmetric_activations)
        (quantize or quantize_static)(
            src, tmp, _calibration_reader(calib, input_name, calibration_batch(len(calib))),
            quant_format=QuantFormat.QDQ, per_channel=bool(options.per_channel),
            activation_type=QuantType.QInt8 if sym else QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude or None, calibrate_method=method,
            # not CalibMaxIntermediateOutputs: onnxruntime 1.32 drops (does not merge) the batches it flushes
            extra_options={"ActivationSymmetric": sym, "WeightSymmetric": True},
        )
        if not os.path.isfile(tmp) or os.path.getsize(tmp) == 0:
            raise ModelLoadError(f"onnxruntime wrote no quantized model for {fp32_path}")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return {
        "method": "static (QDQ), onnxruntime.quantization.quantize_static",
        "weights": "int8 symmetric" + (", per channel" if options.per_channel else ", per tensor"),
        "per_channel": bool(options.per_channel),
        "activations": "int8 symmetric" if sym else "uint8 asymmetric",
        "symmetric_activations": sym,
        "calib_method": options.calib_method,
        "pre_process": bool(options.pre_process),
        "keep_fp32": list(parse_keep_fp32(options.keep_fp32)),
        "excluded_nodes": exclude,
        "onnxruntime_version": ort.__version__,
    }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def update_inference_yml(model_dir: str, settings: Mapping[str, Any], int8_file: str = INT8_ONNX_FILE) -> str:
    """Add ``Global.int8_model`` and a ``Quantization`` section to ``inference.yml`` (atomically), keeping the rest."""
    path = os.path.join(model_dir, INFO_FILE)
    data = read_info(model_dir)
    g = data.get("Global")
    data["Global"] = dict(g) if isinstance(g, Mapping) else {}
    data["Global"]["int8_model"] = int8_file
    data["Quantization"] = {"model": int8_file, "fp32_model": ONNX_FILE, **dict(settings)}
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(data, f, sort_keys=False)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def quantize_folder(model_dir: str, calib: CalibrationSet, options: QuantOptions,
                    quantize: Callable[..., Any] | None = None) -> dict:
    """Quantize ``model_dir/inference.onnx`` to ``inference_int8.onnx`` and record it in ``inference.yml``."""
    settings = quantize_model(os.path.join(model_dir, ONNX_FILE), os.path.join(model_dir, INT8_ONNX_FILE),
                              calib.arrays, options, quantize)
    settings.update({"calibration_images": int(len(calib.arrays)), "calibration_source": calib.source,
                     "calibration_skipped": len(calib.skipped)})
    update_inference_yml(model_dir, settings)
    return settings


# ----------------------------------------------------------------------------- evaluation


def make_session(path: str, threads: int = 2) -> Any:
    ort = require_onnxruntime()
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelLoadError(f"ONNX Runtime cannot load {path}: {bounded(str(e).strip(), 300, 2)}") from e


def predict(session: Any, arrays: np.ndarray, batch: int = 64) -> np.ndarray:
    """The model's outputs for ``arrays`` (N x ...), in batches."""
    name = session.get_inputs()[0].name
    out = [session.run(None, {name: np.ascontiguousarray(arrays[i:i + batch], dtype=np.float32)})[0]
           for i in range(0, len(arrays), batch)]
    return np.concatenate(out)


@dataclass
class Comparison:
    """Top-1 of the fp32 and INT8 models on the same labelled arrays, overall and per class."""

    top1_fp32: float
    top1_int8: float
    agreement: float  # fraction of images with the same top-1 class
    max_abs_diff: float  # of the outputs
    per_class: list[tuple[int, int, float, float]]  # (class id, images, fp32 acc, int8 acc)

    @property
    def diff_points(self) -> float:
        return 100.0 * (self.top1_int8 - self.top1_fp32)


EVAL_BACKENDS = ("onnxruntime", "openvino")


def check_eval_backend(name: str) -> str:
    """``--eval_backend``'s value, checked (openvino: installed)."""
    name = str(name).lower()
    if name not in EVAL_BACKENDS:
        raise DeployConfigError(f"--eval_backend: expected one of {', '.join(EVAL_BACKENDS)}, got {short(name)}")
    if name == "openvino":
        try:
            import openvino  # noqa: F401
        except ImportError:
            raise MissingPackageError("--eval_backend openvino needs the openvino package: pip install openvino") from None
    return name


def model_outputs(path: str, arrays: np.ndarray, backend: str = "onnxruntime", threads: int = 2) -> np.ndarray:
    """The outputs of the ONNX model at ``path`` for ``arrays``, run as the deploy backend ``backend`` runs it."""
    if check_eval_backend(backend) == "onnxruntime":
        return predict(make_session(path, threads), arrays)
    import openvino as ov

    from deploy.python.backends.openvino import read_onnx

    core = ov.Core()
    try:  # the same graph rewrite and precision as -o Global.backend=openvino
        compiled = core.compile_model(read_onnx(core, path), "CPU",
                                      {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": int(threads)})
    except Exception as e:
        raise ModelLoadError(f"OpenVINO cannot load {path}: {bounded(str(e).strip(), 300, 2)}") from e
    return np.concatenate([compiled(np.ascontiguousarray(arrays[i:i + 64], dtype=np.float32))[0]
                           for i in range(0, len(arrays), 64)])


def compare(fp32_path: str, int8_path: str, arrays: np.ndarray, labels: Sequence[int], threads: int = 2,
            backend: str = "onnxruntime") -> Comparison:
    """Run both models on ``arrays`` (on ``backend``) and compare their top-1 against ``labels``."""
    a = model_outputs(fp32_path, arrays, backend, threads)
    b = model_outputs(int8_path, arrays, backend, threads)
    y = np.asarray(labels, dtype=np.int64)
    pa, pb = a.argmax(1), b.argmax(1)
    per_class = []
    for c in sorted(set(y.tolist())):
        m = y == c
        per_class.append((int(c), int(m.sum()), float((pa[m] == c).mean()), float((pb[m] == c).mean())))
    return Comparison(float((pa == y).mean()), float((pb == y).mean()), float((pa == pb).mean()),
                      float(np.abs(a - b).max()), per_class)


def format_comparison(c: Comparison, images: int, class_names: Mapping[int, str] | None = None,
                      rows: int = 10, backend: str = "onnxruntime") -> str:
    """A bounded report: overall top-1, the difference in points, and a per-class table (the
    ``rows`` classes whose accuracy changed most when there are more)."""
    on = "" if backend == "onnxruntime" else f" with {backend}"
    lines = [f"eval on {images} images{on}: top1 fp32 {c.top1_fp32:.4f}, int8 {c.top1_int8:.4f}, "
             f"difference {c.diff_points:+.2f} points; same top-1 on {100 * c.agreement:.2f}% of images; "
             f"max abs output difference {c.max_abs_diff:.4f}"]
    table = c.per_class
    title = "per class"
    if len(table) > rows:
        table = sorted(table, key=lambda r: (-abs(r[3] - r[2]), r[0]))[:rows]
        title = f"the {rows} of {len(c.per_class)} classes whose accuracy changed most"
    lines.append(f"{title}:")
    lines.append(f"  {'class':<24} {'images':>6} {'fp32':>7} {'int8':>7} {'change':>8}")
    for cid, n, fa, fb in table:
        name = str(class_names.get(cid, cid)) if class_names else str(cid)
        name = name if len(name) <= 24 else name[:21] + "..."
        lines.append(f"  {name:<24} {n:>6} {fa:>7.4f} {fb:>7.4f} {100 * (fb - fa):>+8.2f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line


def add_eval_backend_argument(p: argparse.ArgumentParser) -> None:
    """``--eval_backend``: which runtime the fp32/INT8 comparison runs on (they round differently)."""
    p.add_argument("--eval_backend", default="onnxruntime",
                   help="the runtime the comparison runs both models on, as the deploy backend of that name runs them: "
                        f"{' or '.join(EVAL_BACKENDS)} (default onnxruntime); check the one you will deploy with")


def add_quant_arguments(p: argparse.ArgumentParser) -> None:
    """The calibration and quantization flags shared with ``tools/quantize.py``."""
    p.add_argument("--calib_list", default=None,
                   help="calibration images as a PaddleClas list ('path label' lines)")
    p.add_argument("--calib_dir", default=None, help="calibration images: a folder, searched recursively")
    p.add_argument("--calib_num", type=int, default=DEFAULT_CALIB_NUM,
                   help=f"calibration images at most, spread evenly over classes (default {DEFAULT_CALIB_NUM})")
    p.add_argument("--per_channel", action=argparse.BooleanOptionalAction, default=True,
                   help="int8 weights per output channel (default) or per tensor (--no-per_channel)")
    p.add_argument("--symmetric_activations", action="store_true",
                   help="int8 symmetric activations instead of uint8 asymmetric ones")
    p.add_argument("--calib_method", default="percentile",
                   help=f"one of {', '.join(CALIB_METHODS)} (default percentile)")
    p.add_argument("--keep_fp32", default="",
                   help="comma list of op types (Conv, MatMul, Gemm, ...) or node names to leave in float")
    p.add_argument("--pre_process", action=argparse.BooleanOptionalAction, default=True,
                   help="run onnxruntime's quant_pre_process (shape inference, Conv+Add / MatMul+Add fusion) first "
                        "(default; --no-pre_process quantizes the exported graph as it is)")


def options_from_args(args: argparse.Namespace) -> QuantOptions:
    """Checked options; also checks --calib_num and that at most one calibration source is given."""
    check_calib_num(args.calib_num)
    if args.calib_list and args.calib_dir:
        raise DeployConfigError("--calib_list and --calib_dir: give one calibration source, not both")
    opts = QuantOptions(per_channel=args.per_channel, symmetric_activations=args.symmetric_activations,
                        calib_method=str(args.calib_method).lower(), keep_fp32=parse_keep_fp32(args.keep_fp32),
                        pre_process=args.pre_process)
    opts.check()
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="exported model folder (inference.onnx, inference.yml)")
    add_quant_arguments(p)
    p.add_argument("--eval_list", default=None,
                   help="with a labelled list, compare the top-1 of the fp32 and INT8 models on it")
    add_eval_backend_argument(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    opts = options_from_args(args)
    require_onnxruntime()
    eval_backend = check_eval_backend(args.eval_backend)
    if not os.path.isfile(os.path.join(args.model_dir, ONNX_FILE)):
        raise DeployFileError(f"--model_dir: {os.path.join(args.model_dir, ONNX_FILE)} is missing: export with "
                              "-o Global.export_type=onnx")
    if args.calib_list:
        paths, groups = read_image_list(args.calib_list, [os.path.dirname(os.path.abspath(args.calib_list))])
        source = f"list {args.calib_list}"
    elif args.calib_dir:
        paths, groups = list_images(args.calib_dir)
        source = f"folder {args.calib_dir}"
    else:
        raise DeployConfigError("give the calibration images: --calib_dir FOLDER or --calib_list FILE")
    calib = load_calibration(args.model_dir, paths, groups, args.calib_num, source)
    settings = quantize_folder(args.model_dir, calib, opts)
    print(f"INT8 model written to {os.path.join(args.model_dir, INT8_ONNX_FILE)} "
          f"({settings['calibration_images']} calibration images, {opts.calib_method})")
    if args.eval_list:
        paths, labels = read_image_list(args.eval_list, [os.path.dirname(os.path.abspath(args.eval_list))],
                                        "--eval_list")
        try:
            ids = [int(v) for v in labels]
        except ValueError:
            raise DeployConfigError(f"--eval_list: {args.eval_list} needs integer labels") from None
        ops = read_info(args.model_dir)["PreProcess"]["transform_ops"]
        arrays, kept, _ = preprocess_files(paths, ops, "--eval_list")
        c = compare(os.path.join(args.model_dir, ONNX_FILE), os.path.join(args.model_dir, INT8_ONNX_FILE), arrays,
                    [ids[i] for i in kept], backend=eval_backend)
        print(format_comparison(c, len(kept), backend=eval_backend))
    return 0


if __name__ == "__main__":
    run_cli(main, tool="quantize")
