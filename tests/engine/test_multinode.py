"""Two-machine training proven on one machine: two network namespaces joined by a veth pair.

Each namespace is a "node" with its own network stack, address and ports; one
``paddle.distributed.launch --nnodes 2 --master <node 0>:<port> --nproc_per_node 1`` runs in
each (gloo on the CPU), exactly the command docs/distributed.md gives for two hosts. Only the
two addresses of the private test subnet below (inside the namespaces) and loopback are used.

Needs root (``ip netns add``); CI on these machines runs as root. Where namespaces cannot be
made the tests fail with the reason instead of being skipped.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

CONFIG = os.path.join(REPO, "configs", "quick_start", "PPLCNet_x0_25_digits.yaml")
SUBNET_PREFIX = 30
NODE_IPS = ("10.231.0.1", "10.231.0.2")  # private test subnet, only ever configured inside the namespaces
MASTER_PORT = 36123  # in node 0's namespace: no clash with the host's ports
STOP_BOUND_SECONDS = 120


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


class Nodes:
    """Two namespaces ``ns[0]``/``ns[1]`` joined by a veth pair ``dev[0]``/``dev[1]``."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 10**6}"
        self.ns = (f"ppcls-{tag}-n0", f"ppcls-{tag}-n1")
        self.dev = (f"pc{tag}a", f"pc{tag}b")  # interface names: at most 15 characters
        self.launchers: list[subprocess.Popen] = []

    def create(self) -> None:
        if shutil.which("ip") is None:
            pytest.fail("this test needs iproute2's `ip` command (apt-get install iproute2) to make two network "
                        "namespaces standing for two machines; it is not installed")
        self.remove_leftovers()
        made = _ip("netns", "add", self.ns[0], check=False)
        if made.returncode != 0:
            pytest.fail(
                f"cannot create a network namespace (`ip netns add {self.ns[0]}`: {made.stderr.strip()}): this "
                f"test stands two machines up as two namespaces and needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN; "
                f"running as uid {os.getuid()}). CI on these machines runs as root and permits it; run it as "
                f"root or in a container started with --cap-add SYS_ADMIN --cap-add NET_ADMIN")
        _ip("netns", "add", self.ns[1])
        _ip("link", "add", self.dev[0], "type", "veth", "peer", "name", self.dev[1])
        for ns, dev, addr in zip(self.ns, self.dev, NODE_IPS):
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{addr}/{SUBNET_PREFIX}", "dev", dev)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", dev, "up")

    def remove_leftovers(self) -> None:
        """Namespaces and links of these exact names left by an earlier run that was killed."""
        if os.getuid() != 0:
            return
        for ns in self.ns:
            if os.path.exists(os.path.join("/run/netns", ns)):
                _ip("netns", "del", ns, check=False)
        _ip("link", "del", self.dev[0], check=False)

    def launch(self, node: int, workdir: str, overrides: list[str]) -> subprocess.Popen:
        """Node ``node``'s launcher, as a user on that machine would start it."""
        cmd = ["ip", "netns", "exec", self.ns[node], sys.executable, "-m", "paddle.distributed.launch",
               "--nnodes", "2", "--master", f"{NODE_IPS[0]}:{MASTER_PORT}", "--host", NODE_IPS[node],
               "--nproc_per_node", "1", "--log_dir", os.path.join(workdir, f"log_node{node}"),
               os.path.join(REPO, "tools", "train.py"), "-c", CONFIG,
               "-o", f"Global.output_dir={os.path.join(workdir, f'out_node{node}')}", *overrides]
        env = {k: v for k, v in os.environ.items() if k not in ("GLOO_SOCKET_IFNAME", "http_proxy", "https_proxy")}
        env["PYTHONUNBUFFERED"] = "1"
        out = open(os.path.join(workdir, f"launcher_node{node}.txt"), "w")
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        out.close()
        self.launchers.append(proc)
        return proc

    def kill_node(self, node: int) -> None:
        """Every process of a node (launcher, trainer, loader workers): the machine is gone."""
        for pid in self.pids(node):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def pids(self, node: int) -> list[int]:
        proc = _ip("netns", "pids", self.ns[node], check=False)
        return [int(p) for p in proc.stdout.split()]

    def stop_all(self) -> None:
        for node in (0, 1):
            self.kill_node(node)
        for proc in self.launchers:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(timeout=30)
        self.launchers.clear()

    def destroy(self) -> None:
        try:
            self.stop_all()
        finally:
            for ns in self.ns:  # deleting a namespace also deletes its end of the veth pair
                _ip("netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def nodes():
    pair = Nodes()
    try:
        pair.create()
        yield pair
    finally:
        pair.destroy()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    """The digits set, on a path both "machines" read (a shared file system)."""
    from ppcls.data.prepare.digits import prepare_digits

    return prepare_digits(str(tmp_path_factory.mktemp("shared") / "digits"))


def _data_overrides(dataset: str) -> list[str]:
    return [f"-o DataLoader.prepare.dataset_dir={dataset}",
            f"-o DataLoader.Train.dataset.image_root={dataset}",
            f"-o DataLoader.Train.dataset.cls_label_path={dataset}/train_list.txt",
            f"-o DataLoader.Eval.dataset.image_root={dataset}",
            f"-o DataLoader.Eval.dataset.cls_label_path={dataset}/val_list.txt"]


def _args(*overrides: str) -> list[str]:
    out: list[str] = []
    for o in overrides:
        out.extend(o.split(" ", 1))
    return out


def _read(path: str) -> str:
    return open(path, errors="replace").read() if os.path.isfile(path) else ""


def _wait_for(path: str, pattern: str, timeout: float, procs: list[subprocess.Popen]) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if re.search(pattern, _read(path)):
            return
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.3)
    raise AssertionError(f"{pattern!r} did not appear in {path} within {timeout} s:\n{_read(path)[-3000:]}")


def test_two_nodes_train_one_epoch(nodes, dataset, tmp_path):
    work = str(tmp_path)
    short = _args("-o Global.epochs=1", "-o Global.max_iters_per_epoch=6", "-o Global.print_batch_step=2",
                  *_data_overrides(dataset))
    launchers = [nodes.launch(0, work, short), nodes.launch(1, work, short)]
    try:
        codes = [p.wait(timeout=240) for p in launchers]
    finally:
        nodes.stop_all()
    rank0 = _read(os.path.join(work, "log_node0", "workerlog.0"))
    rank1 = _read(os.path.join(work, "log_node1", "workerlog.0"))
    assert codes == [0, 0], rank0[-3000:] + rank1[-3000:] + _read(os.path.join(work, "launcher_node1.txt"))[-2000:]
    # one process per node: node 0 holds global rank 0, node 1 global rank 1, two nodes in the job
    env1 = _read(os.path.join(work, "log_node1", "envlog.0"))
    assert "PADDLE_TRAINER_ID=1\n" in env1 and "PADDLE_NNODES=2\n" in env1 and "PADDLE_TRAINERS_NUM=2\n" in env1
    # gloo listens on the node's veth (found from the launcher's --host), not on loopback (rank 1 logs
    # warnings only; it connected, or nothing below would have run)
    assert f"gloo: using interface {nodes.dev[0]} (address {NODE_IPS[0]})" in rank0
    # the global batch counts both nodes: 32 per process x 2, and the LR is scaled from the recipe's 32
    assert "scaling the learning rate linearly for global batch 64 (recipe: 32): 0.05 -> 0.1" in rank0
    assert "[Train][Epoch 1/1][Iter: 6/6]" in rank0
    assert re.search(r"\[Eval\]\[Epoch 1\]\[Avg\].*top1: [\d.]+", rank0)
    assert "weights identical on all 2 ranks" in rank0
    # only global rank 0 writes: node 1's output folder holds no checkpoint and no log
    run0 = os.path.join(work, "out_node0", "PPLCNet_x0_25")
    assert os.path.isfile(os.path.join(run0, "latest.pdparams")) and os.path.isfile(os.path.join(run0, "train.log"))
    written1 = glob.glob(os.path.join(work, "out_node1", "**", "*"), recursive=True)
    assert not [f for f in written1 if f.endswith((".pdparams", ".pdopt", ".pdstates", ".log"))], written1
    assert "[Train]" not in rank1


def _interrupt_and_time(nodes, work: str, dataset: str, interrupt) -> tuple[int, float, str, str]:
    long = _args("-o Global.epochs=3", "-o Global.print_batch_step=1", "-o Global.eval_during_train=False",
                 *_data_overrides(dataset))
    launchers = [nodes.launch(0, work, long), nodes.launch(1, work, long)]
    log0 = os.path.join(work, "log_node0", "workerlog.0")
    try:
        _wait_for(log0, r"\[Iter: 4/", 180, launchers)
        start = time.monotonic()
        interrupt()
        try:
            code = launchers[0].wait(timeout=STOP_BOUND_SECONDS + 60)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - start
    finally:
        nodes.stop_all()
    return code, took, _read(log0), _read(os.path.join(work, "launcher_node0.txt"))


def test_killed_node_stops_the_other_with_a_clear_message(nodes, dataset, tmp_path):
    code, took, rank0, launcher0 = _interrupt_and_time(nodes, str(tmp_path), dataset, lambda: nodes.kill_node(1))
    print(f"node 0 stopped {took:.1f} s after node 1 was killed (exit {code})")
    assert code is not None and code != 0, f"node 0 still ran {took:.0f} s after node 1 was killed:\n{rank0[-3000:]}"
    assert took < STOP_BOUND_SECONDS
    line = next((ln for ln in rank0.splitlines() if "lost contact with the other training processes" in ln), "")
    # the kill lands in whichever collective runs then: the gradients' average, or a logged value's sum
    assert re.search(r"while (averaging the gradients|summing values over the ranks): rank 1 \(10\.231\.0\.2", line), \
        rank0[-3000:]
    assert "closed the connection" in line
    assert "rerun the command on every node with -o Global.checkpoints=" in rank0
    assert "terminate called" not in rank0 and "Traceback" not in rank0
    assert "lost contact with the other training processes" in launcher0  # the launcher's error tail shows it


def test_unreachable_node_stops_the_other_within_the_gloo_timeout(nodes, dataset, tmp_path):
    """Node 1's network goes away without a word (no connection reset): gloo's timeout bounds the wait."""

    def cut() -> None:
        _ip("-n", nodes.ns[1], "link", "set", nodes.dev[1], "down")

    try:
        code, took, rank0, _ = _interrupt_and_time(nodes, str(tmp_path), dataset, cut)
    finally:
        _ip("-n", nodes.ns[1], "link", "set", nodes.dev[1], "up", check=False)
    print(f"node 0 stopped {took:.1f} s after node 1's link went down (exit {code})")
    assert code is not None and code != 0, f"node 0 still ran {took:.0f} s after the link went down:\n{rank0[-3000:]}"
    assert took < STOP_BOUND_SECONDS
    assert "lost contact with the other training processes while" in rank0, rank0[-3000:]
    assert "within gloo's 30 s timeout" in rank0 or "stopped answering" in rank0
    assert "terminate called" not in rank0
