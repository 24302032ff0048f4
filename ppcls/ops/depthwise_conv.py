"""Fast CPU depthwise convolution: a compiled Paddle custom op, with Paddle's conv2d as the fallback.

``depthwise_conv2d`` runs the custom operator (``csrc/depthwise_conv.cc``: OpenMP over the
batch x channel planes, vectorised inner loops, forward and backward) when the input is a float32
NCHW tensor on the CPU, Paddle is in eager mode and the extension could be built; otherwise it calls
``paddle.nn.functional.conv2d(..., groups=C)``. While tracing for ``paddle.jit.to_static`` / export
the standard op is always used, so exported models hold only standard Paddle ops.

The extension is compiled with the machine's C++ compiler on first use and cached in
``$PPCLS_OPS_CACHE_DIR`` (default ``~/.cache/ppcls/ops``; not under the weights' ``PPCLS_CACHE_DIR``, which
runs point elsewhere, so one build serves every run) under a name keyed by the source, the
flags, the CPU and the Paddle version; a file lock serialises concurrent builds. If the build fails,
one warning is logged and Paddle's kernel is used for the rest of the process.
``PPCLS_DEPTHWISE=paddle`` forces Paddle's kernel (A/B measurements); ``fast`` or unset uses the op.
The op runs on as many threads as Paddle's CPU math threads would (``PPCLS_DEPTHWISE_THREADS=N``
overrides), in the OpenMP runtime Paddle ships (libiomp5) so Paddle's and the op's threads are one pool.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import platform
import shutil
import sys
from collections.abc import Sequence
from types import ModuleType

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ppcls.utils.dist import local_world_size
from ppcls.utils.errors import ConfigError, summarize

logger = logging.getLogger(__name__)

ENV_SWITCH = "PPCLS_DEPTHWISE"
THREADS_ENV = "PPCLS_DEPTHWISE_THREADS"  # overrides the thread count (default: as Paddle's CPU threads)
OP_NAME = "ppcls_depthwise_conv2d"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "depthwise_conv.cc")
CXX_FLAGS = ("-O3", "-march=native", "-fopenmp", "-DNDEBUG")


def ld_flags() -> list[str]:
    """Link the OpenMP runtime Paddle ships (libiomp5, one thread pool with oneDNN/MKL), else g++'s libgomp."""
    libs = os.path.join(os.path.dirname(os.path.abspath(paddle.__file__)), "libs")
    if os.path.isfile(os.path.join(libs, "libiomp5.so")):
        return [f"-L{libs}", "-l:libiomp5.so", f"-Wl,-rpath,{libs}"]
    return ["-fopenmp"]


IntPair = int | Sequence[int]


def cache_dir() -> str:
    """Where compiled ops are kept: ``$PPCLS_OPS_CACHE_DIR``, default ``~/.cache/ppcls/ops``."""
    return os.environ.get("PPCLS_OPS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ppcls", "ops")


def _cpu_signature() -> str:
    """The CPU model and feature flags (``-march=native`` code is only valid on a matching CPU)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor()


def build_name() -> str:
    """Module name keyed by the source text, flags, CPU, Python and Paddle version."""
    h = hashlib.sha256()
    with open(SOURCE, "rb") as f:
        h.update(f.read())
    for part in (" ".join(CXX_FLAGS), " ".join(ld_flags()), platform.machine(), _cpu_signature(),
                 paddle.__version__, sys.version):
        h.update(b"\0" + part.encode())
    return f"ppcls_dwconv_{h.hexdigest()[:16]}"


@contextlib.contextmanager
def _file_lock(path: str):
    """An exclusive ``fcntl.flock`` on ``path`` (held by one process at a time)."""
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _import_built(name: str, root: str) -> ModuleType | None:
    """The already-built library of this key, skipping ``load``'s setup.py run (~1 s); None if absent/broken."""
    folder = os.path.join(root, name)
    if not os.path.isfile(os.path.join(folder, f"{name}.so")):
        return None
    try:
        from paddle.utils.cpp_extension.extension_utils import _import_module_from_library

        return _import_module_from_library(name, folder, False)
    except Exception as e:  # a private Paddle helper, or a damaged build: rebuild from scratch
        logger.info("rebuilding %s (%s: %s)", folder, type(e).__name__, e)
        shutil.rmtree(folder, ignore_errors=True)
        return None


@functools.lru_cache(maxsize=1)
def load_extension() -> ModuleType | None:
    """The compiled op module (built once per source/CPU and cached), or None after one warning."""
    try:
        from paddle.utils import cpp_extension  # slow to import: only when the op is first built

        name = build_name()
        root = cache_dir()
        os.makedirs(root, exist_ok=True)
        with _file_lock(os.path.join(root, f"{name}.lock")):
            module = _import_built(name, root)
            if module is None:
                with contextlib.redirect_stdout(sys.stderr):  # the build's chatter must not pollute stdout
                    module = cpp_extension.load(name=name, sources=[SOURCE], extra_cxx_cflags=list(CXX_FLAGS),
                                                extra_ldflags=ld_flags(), build_directory=root)
        if not hasattr(module, OP_NAME):
            raise RuntimeError(f"the built module has no {OP_NAME}")
        return module
    except Exception as e:  # no compiler, failed build, unloadable library: Paddle's kernel still works
        reason = " ".join(str(e).split())[:300] or type(e).__name__
        logger.warning("fast CPU depthwise conv unavailable, using Paddle's conv2d instead (%s: %s; any "
                       "compiler output is above). Set %s=paddle to skip building it and silence this warning.",
                       type(e).__name__, reason, ENV_SWITCH)
        return None


def use_fast_op() -> bool:
    """False when ``PPCLS_DEPTHWISE=paddle`` forces Paddle's own kernel."""
    mode = os.environ.get(ENV_SWITCH, "fast").strip().lower()
    if mode not in ("", "fast", "paddle"):
        raise ConfigError(f"{ENV_SWITCH}={summarize(mode)}: expected 'fast' or 'paddle'")
    return mode != "paddle"


def num_threads() -> int:
    """Op threads: ``PPCLS_DEPTHWISE_THREADS``, else Paddle's math threads if reported, else cores per local process."""
    override = os.environ.get(THREADS_ENV, "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ConfigError(f"{THREADS_ENV}={summarize(override)}: expected a positive integer")
        return int(override)
    core = paddle.base.core
    if hasattr(core, "get_num_threads"):
        return max(1, int(core.get_num_threads()))
    return _cores_per_process()


@functools.lru_cache(maxsize=1)
def _cores_per_process() -> int:
    """The cores per local training process, what ``setup_device`` gives Paddle by default (fixed per process)."""
    # Paddle sets OMP_NUM_THREADS=1 at import when unset, so that says nothing about the intended threads.
    return max(1, (os.cpu_count() or 1) // local_world_size())


def _pair(value: IntPair) -> list[int] | None:
    if isinstance(value, int):
        return [value, value]
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return list(value)
    return None


def _paddings(padding: IntPair | str) -> list[int] | None:
    """[top, bottom, left, right] from an int, [h, w] or [top, bottom, left, right]; None otherwise."""
    if isinstance(padding, Sequence) and not isinstance(padding, str) and len(padding) == 4 \
            and all(isinstance(v, int) for v in padding):
        return list(padding)
    pair = None if isinstance(padding, str) else _pair(padding)
    return None if pair is None else [pair[0], pair[0], pair[1], pair[1]]


def _fast_args(x: paddle.Tensor, weight: paddle.Tensor, stride: IntPair, padding: IntPair | str,
               dilation: IntPair) -> tuple[list[int], list[int], list[int]] | None:
    """The op's (strides, paddings, dilations) when the custom op can run this call, else None."""
    if not use_fast_op() or not paddle.in_dynamic_mode():
        return None
    if x.dtype != paddle.float32 or weight.dtype != paddle.float32 or len(x.shape) != 4 or len(weight.shape) != 4:
        return None
    if not (x.place.is_cpu_place() and weight.place.is_cpu_place()) or paddle.amp.is_autocast_enabled():
        return None
    n, c, h, w = x.shape
    if list(weight.shape[:2]) != [c, 1] or min(n, c, h, w) < 1:
        return None
    strides, pads, dils = _pair(stride), _paddings(padding), _pair(dilation)
    if strides is None or pads is None or dils is None or min(strides + dils) < 1 or min(pads) < 0:
        return None
    kh, kw = weight.shape[2:]
    if h + pads[0] + pads[1] < (kh - 1) * dils[0] + 1 or w + pads[2] + pads[3] < (kw - 1) * dils[1] + 1:
        return None  # Paddle raises its own error
    return strides, pads, dils


def depthwise_conv2d(x: paddle.Tensor, weight: paddle.Tensor, stride: IntPair = 1, padding: IntPair | str = 0,
                     dilation: IntPair = 1) -> paddle.Tensor:
    """Depthwise conv (NCHW, weight [C, 1, kh, kw], no bias): the fast CPU op, or Paddle's conv2d."""
    args = _fast_args(x, weight, stride, padding, dilation)
    module = load_extension() if args is not None else None
    if module is None:
        return F.conv2d(x, weight, stride=stride, padding=padding, dilation=dilation, groups=x.shape[1])
    strides, pads, dils = args
    return getattr(module, OP_NAME)(x, weight, strides, pads, dils, num_threads())


class DepthwiseConv2D(nn.Layer):
    """Drop-in for ``nn.Conv2D(C, C, k, stride, padding, groups=C, bias_attr=False)`` using the fast op."""

    def __init__(self, channels: int, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair | str = 0,
                 dilation: IntPair = 1, weight_attr=None) -> None:
        super().__init__()
        kernel = _pair(kernel_size)
        if kernel is None:
            raise ValueError(f"kernel_size: expected an int or two ints, got {kernel_size!r}")
        self._channels = channels
        self._kernel_size = kernel
        self._stride = stride
        self._padding = padding
        self._dilation = dilation
        # Same shape and default initialiser as nn.Conv2D(groups=C): Normal(0, sqrt(2 / (k_h * k_w * C))).
        std = (2.0 / (kernel[0] * kernel[1] * channels)) ** 0.5
        self.weight = self.create_parameter(shape=[channels, 1, *kernel], attr=weight_attr,
                                            default_initializer=nn.initializer.Normal(0.0, std))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return depthwise_conv2d(x, self.weight, self._stride, self._padding, self._dilation)

    def extra_repr(self) -> str:
        return (f"{self._channels}, kernel_size={self._kernel_size}, stride={self._stride}, "
                f"padding={self._padding}, dilation={self._dilation}")
