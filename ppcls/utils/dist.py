"""Rank/world helpers that work with and without ``paddle.distributed.launch``.

Every collective of the project goes through this module, so that a lost peer (a node that
died, a network that failed) ends in one :class:`PeerLostError` sentence instead of a C++
abort or a hang:

* On the CPU (gloo) gradients are averaged by :class:`GradientAllReduce`, one fused
  all-reduce called by the trainer before each optimizer step. ``paddle.DataParallel``'s
  reducer would run the same all-reduce inside the backward pass, where a gloo error cannot
  reach Python: Paddle 3.3 aborts the process with ``terminate called after throwing an
  instance of 'gloo::TimeoutException'``. gloo's own timeout (30 s, fixed in Paddle's gloo
  context) bounds every wait for a silent peer; a peer whose process died is noticed at once.
* On GPUs (NCCL) ``paddle.DataParallel`` stays: its reducer overlaps the all-reduce with the
  backward pass (not run on this project's CPU-only machines).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import paddle
import paddle.distributed as dist

from ppcls.utils.errors import UserError

logger = logging.getLogger(__name__)

# the timeout gloo applies to each collective in Paddle 3.3 (gloo's default; not settable from Python)
GLOO_TIMEOUT_SECONDS = 30


class PeerLostError(UserError, RuntimeError):
    """Another training process stopped or could not be reached (a node died, the network failed)."""


def world_size() -> int:
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def rank() -> int:
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def is_main() -> bool:
    return rank() == 0


def local_world_size() -> int:
    """The training processes on this machine (``--nproc_per_node``); all of them without a launcher."""
    return max(1, int(os.environ.get("PADDLE_LOCAL_SIZE") or world_size()))


def num_nodes() -> int:
    return int(os.environ.get("PADDLE_NNODES", "1") or 1)


_initialized = {"done": False}
CONNECTING = "connecting the training processes"


def init_parallel() -> None:
    """Initialise the process group once when launched with more than one process."""
    if world_size() > 1 and not _initialized["done"]:
        _choose_gloo_interface()
        _collective(CONNECTING, dist.init_parallel_env)
        _initialized["done"] = True


def _is_gloo() -> bool:
    if _initialized["done"]:
        try:
            return str(dist.get_backend()).lower() == "gloo"
        except Exception:  # noqa: BLE001 - no default group: fall back to the launcher's variable
            pass
    return os.environ.get("PADDLE_DISTRI_BACKEND", "").lower() == "gloo" or not paddle.is_compiled_with_cuda()


def _choose_gloo_interface() -> None:
    """Make gloo listen on the network interface of this node's launcher address.

    Without ``GLOO_SOCKET_IFNAME`` gloo binds to the address of the host name, which is
    127.0.0.1/127.0.1.1 on many machines (Debian's /etc/hosts) or an interface the other
    nodes cannot reach; the other node then fails to connect. The launcher already knows the
    address the other nodes use (``--host`` or the detected IP), so gloo takes its interface.
    """
    if num_nodes() < 2 or os.environ.get("GLOO_SOCKET_IFNAME") or not _is_gloo():
        return
    ip = os.environ.get("PADDLE_CURRENT_ENDPOINT", "").rsplit(":", 1)[0]
    if not ip or ip.startswith("127."):
        logger.warning("this node's address is %r: the other nodes cannot reach it; start the launcher with "
                       "--host <this node's IP> (or set GLOO_SOCKET_IFNAME)", ip)
        return
    iface = interface_with_address(ip)
    if iface is None:
        logger.warning("no network interface holds this node's address %s: gloo binds to the host name's "
                       "address; set GLOO_SOCKET_IFNAME=<interface> if the nodes cannot connect", ip)
        return
    os.environ["GLOO_SOCKET_IFNAME"] = iface
    logger.info("gloo: using interface %s (address %s); set GLOO_SOCKET_IFNAME to choose another", iface, ip)


def interface_with_address(ip: str) -> str | None:
    """The name of the network interface whose IPv4 address is ``ip`` (Linux), else None."""
    import fcntl  # Unix only, like the ioctl below
    import socket
    import struct

    siocgifaddr = 0x8915
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                packed = fcntl.ioctl(s.fileno(), siocgifaddr, struct.pack("256s", name.encode()[:15]))
            except OSError:  # no IPv4 address on this interface
                continue
        if socket.inet_ntoa(packed[20:24]) == ip:
            return name
    return None


# ---------------------------------------------------------------------------- lost peers
_GLOO_PAIR = re.compile(r"pair_rank = (\d+) peer_str = \[([^\]]+)\](:\d+)?")
_GLOO_ADDR = re.compile(r"\[([0-9A-Fa-f.:]+)\](:\d+)?:? *([A-Za-z][^()\n]*)?")


def _is_comm_failure(exc: BaseException) -> bool:
    text = str(exc)
    return "gloo" in text.lower() and any(
        w in text for w in ("TIMEOUT", "Timed out", "Connection", "connect", "closed", "reset", "Read error"))


def _rank_at(ip: str) -> int | None:
    """The global rank whose launcher endpoint is on ``ip``, when only one is."""
    endpoints = os.environ.get("PADDLE_TRAINER_ENDPOINTS", "").split(",")
    ranks = [i for i, ep in enumerate(endpoints) if ep.rsplit(":", 1)[0] == ip]
    return ranks[0] if len(ranks) == 1 else None


def _who_was_lost(text: str) -> str:
    pair = _GLOO_PAIR.search(text)
    if pair:
        return f"rank {pair.group(1)} ({pair.group(2)}{pair.group(3) or ''}) closed the connection or stopped answering"
    addr = _GLOO_ADDR.search(text)
    if addr and addr.group(1) not in ("", "none"):
        peer = _rank_at(addr.group(1))
        name = f"rank {peer} ({addr.group(1)})" if peer is not None else f"the process at {addr.group(1)}"
        reason = (addr.group(3) or "").strip().rstrip(".")
        return f"{name} {'closed the connection' if 'reset' in reason or 'closed' in reason else 'failed'}" + (
            f" ({reason})" if reason else "")
    return f"no answer from the other ranks within gloo's {GLOO_TIMEOUT_SECONDS} s timeout"


def _peer_lost_message(what: str, exc: BaseException) -> str:
    text = str(exc)
    first = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
    if what == CONNECTING:
        return (
            f"could not connect the training processes: {_who_was_lost(text)}. Check that each node's launcher "
            f"has --host <the address the other nodes reach it at>, that the nodes can open TCP connections to "
            f"each other on any port (the launcher's 35100-64000 and gloo's ephemeral ones) and, on the CPU, that "
            f"gloo listens on that address (GLOO_SOCKET_IFNAME={os.environ.get('GLOO_SOCKET_IFNAME') or 'unset'}). (gloo: {first})"
        )
    return (
        f"lost contact with the other training processes while {what}: {_who_was_lost(text)}. A node or a "
        f"training process stopped, or the network between the nodes failed; this rank ({rank()} of "
        f"{world_size()}, {num_nodes()} node(s)) stops too. Once every node runs again, rerun the command on every "
        f"node with -o Global.checkpoints=<Global.output_dir>/<Arch.name>/latest to continue from rank 0's last "
        f"completed epoch (if it wrote one). (gloo: {first})"
    )


def _collective(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a collective; a failure to reach the other ranks becomes a :class:`PeerLostError`."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as e:
        if isinstance(e, PeerLostError) or not _is_comm_failure(e):
            raise
        raise PeerLostError(_peer_lost_message(what, e)) from e


# ---------------------------------------------------------------------------- training
class GradientAllReduce:
    """Average the gradients of ``net``'s trainable parameters over all ranks.

    One fused all-reduce per dtype, called once per optimizer step (so gradient accumulation
    exchanges gradients only when it steps). A trainable parameter without a gradient takes
    part with zeros, so every rank sends buffers of the same layout.
    """

    def __init__(self, net: paddle.nn.Layer) -> None:
        self.params = [p for p in net.parameters() if p.trainable and not p.stop_gradient]
        self.calls = 0

    @paddle.no_grad()
    def __call__(self) -> None:
        n = world_size()
        if n == 1 or not self.params:
            return
        by_dtype: dict[Any, list] = {}
        for p in self.params:
            by_dtype.setdefault(p.dtype, []).append(p)
        for params in by_dtype.values():
            flat = paddle.concat([
                p.grad.reshape([-1]) if p.grad is not None else paddle.zeros([int(p.numel())], dtype=p.dtype)
                for p in params
            ])
            _collective("averaging the gradients", dist.all_reduce, flat)
            flat = flat / n
            offset = 0
            for p in params:
                size = int(p.numel())
                if p.grad is not None:
                    p.grad.set_value(flat[offset : offset + size].reshape(p.grad.shape))
                offset += size
        self.calls += 1


def broadcast_parameters(net: paddle.nn.Layer, src: int = 0) -> None:
    """Copy rank ``src``'s weights and buffers to every rank (what DataParallel does at start)."""
    if world_size() == 1:
        return
    with paddle.no_grad():
        for _, value in sorted(net.state_dict().items()):
            _collective("copying rank 0's weights to the other ranks", dist.broadcast, value, src)


def wrap_for_training(net: paddle.nn.Layer, to_static: bool = False) -> tuple[paddle.nn.Layer, Callable[[], None] | None]:
    """The layer the training loop calls, and what it calls before each optimizer step.

    ``to_static`` converts the plain network's ``forward`` (in place, so ``net`` keeps its
    parameters and what is saved is unchanged) *before* any data-parallel wrapping: Paddle
    cannot convert ``paddle.DataParallel.forward(*inputs)`` (its function spec takes no
    ``*args``: "requires 0 arguments ... but received 1"), and the gradient exchange must
    stay outside the static program anyway.

    Returns ``(model, grad_sync)``: in one process ``(net, None)``; with gloo ``(net,
    GradientAllReduce(net))`` after copying rank 0's weights to all ranks; with NCCL
    ``(paddle.DataParallel(net), None)`` (its reducer all-reduces during backward).
    """
    if to_static:
        net = paddle.jit.to_static(net, full_graph=True)
    if world_size() == 1:
        return net, None
    if _is_gloo():
        broadcast_parameters(net)
        return net, GradientAllReduce(net)
    return paddle.DataParallel(net), None


# ---------------------------------------------------------------------------- collectives
def all_reduce_sum(tensor: paddle.Tensor) -> paddle.Tensor:
    """Sum ``tensor`` over ranks (in place), a no-op in a single process."""
    if world_size() > 1:
        _collective("summing values over the ranks", dist.all_reduce, tensor)
    return tensor


def barrier() -> None:
    if world_size() > 1:
        _collective("waiting for the other ranks", dist.barrier)


def parameter_checksum(model: paddle.nn.Layer) -> float:
    """A float64 fingerprint of all weights and buffers (sum of |x| weighted by position)."""
    total = 0.0
    for i, (_, value) in enumerate(sorted(model.state_dict().items())):
        arr = value.numpy().astype(np.float64).ravel()
        total += (i + 1) * float(np.abs(arr).sum()) + float(arr[: 16].sum())
    return total


def replicas_identical(model: paddle.nn.Layer) -> tuple[bool, list[float]]:
    """Whether every rank holds the same weights, with each rank's checksum."""
    value = parameter_checksum(model)
    if world_size() == 1:
        return True, [value]
    gathered: list = []
    _collective("comparing the weights of the ranks", dist.all_gather_object, gathered, value)
    return all(abs(v - gathered[0]) <= 1e-9 * max(1.0, abs(gathered[0])) for v in gathered), gathered


@paddle.no_grad()
def average_running_stats(model: paddle.nn.Layer) -> None:
    """Average BatchNorm running statistics over ranks (each rank saw different data).

    Gradients keep trainable weights in step; the statistics need this so that every rank
    evaluates and saves the same model.
    """
    if world_size() == 1:
        return
    stats = [p for n, p in model.named_parameters() if not p.trainable and n.endswith(("_mean", "_variance"))]
    if not stats:
        return
    flat = paddle.concat([p.reshape([-1]).astype("float32") for p in stats])
    _collective("averaging the BatchNorm statistics", dist.all_reduce, flat)
    flat = flat / world_size()
    offset = 0
    for p in stats:
        n = int(p.numel())
        p.set_value(flat[offset : offset + n].reshape(p.shape).astype(p.dtype))
        offset += n
