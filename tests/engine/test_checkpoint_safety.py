"""Checkpoint sets under kills, concurrent readers and full disks (ppcls/engine/checkpoint.py).

Kills are real: a forked child runs the save and SIGKILLs itself at a chosen step of the
protocol (or is SIGKILLed by the parent after a random delay); the parent then plays the
reader (which must not change the folder) and the next writer (which recovers).
"""

from __future__ import annotations

import errno
import os
import random
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, nullcontext

import numpy as np
import paddle
import pytest

from ppcls.engine import checkpoint as ck
from ppcls.engine.checkpoint import Checkpointer, CheckpointError, CheckpointWriteError, load_checkpoint
from ppcls.utils.errors import UserError
from ppcls.utils.io import WriteError, ensure_writable_dir
from tests.conftest import REPO, run_tool, tiny_config, write_config

SIZE = 200_000  # floats per part: big enough that a write takes a while, small enough to be quick


def full(v: float, n: int = SIZE) -> dict:
    return {"w": paddle.full([n], float(v))}


def save_epoch(prefix: str, epoch: int, ema: bool = True, n: int = SIZE) -> None:
    """A set whose every part says which epoch it belongs to."""
    ck.save_checkpoint(prefix, full(epoch, n), full(epoch, 4), {"epoch": epoch},
                       full(epoch + 0.5, n) if ema else None)


def check_set(prefix: str) -> int:
    """The epoch of the complete set at ``prefix``; every part must belong to it."""
    c = load_checkpoint(prefix)
    epoch = c.states["epoch"]
    assert float(c.weights["w"][0]) == epoch and float(c.weights["w"][-1]) == epoch
    assert float(c.optimizer["w"][0]) == epoch
    if c.ema is not None:
        assert float(c.ema["w"][-1]) == epoch + 0.5
    return epoch


def snapshot(folder: str) -> dict:
    return {n: (st.st_ino, st.st_size, st.st_mtime_ns)
            for n in sorted(os.listdir(folder)) for st in [os.stat(os.path.join(folder, n))]}


def fork_and_run(fn) -> int:
    """Run ``fn`` in a forked child; returns the child's wait status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            fn()
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1]


def protocol_steps(tmp_path) -> list[str]:
    steps: list[str] = []
    ck.fault_hook = steps.append
    try:
        save_epoch(str(tmp_path / "probe" / "latest"), 1, n=4)
    finally:
        ck.fault_hook = None
    return steps


def test_sigkill_at_every_step_of_a_save(tmp_path):
    steps = protocol_steps(tmp_path)
    assert steps[:4] == ["write .pdparams", "write .pdopt", "write _ema.pdparams", "write .pdstates"]
    assert "commit" in steps and steps[-1] == "remove journal"
    committed_from = steps.index("commit") + 1  # killed after the journal's rename
    for i, step in enumerate([*steps, "after"]):
        folder = tmp_path / f"k{i}"
        prefix = str(folder / "latest")
        save_epoch(prefix, 1)

        def killed_save(step=step, prefix=prefix):
            ck.fault_hook = lambda name: os.kill(os.getpid(), signal.SIGKILL) if name == step else None
            save_epoch(prefix, 2)

        status = fork_and_run(killed_save)
        assert os.WIFSIGNALED(status) == (step != "after"), step
        # a reader sees a whole set, the old or the new one, and leaves the folder as it is
        before = snapshot(str(folder))
        seen = check_set(prefix)
        assert seen in (1, 2), step
        assert snapshot(str(folder)) == before, f"the reader changed the folder (killed at {step})"
        # the next writer recovers: committed saves are finished, others discarded
        Checkpointer(str(folder))
        assert sorted(os.listdir(folder)) == ["latest.pdopt", "latest.pdparams", "latest.pdstates",
                                              "latest_ema.pdparams"], step
        expected = 2 if i >= committed_from else 1
        assert check_set(prefix) == expected, step
        assert seen == expected, step  # the reader already took the committed set
        # and PaddleClas-style direct reads of the files give the same set
        assert float(paddle.load(prefix + ".pdparams")["w"][0]) == expected
        assert paddle.load(prefix + ".pdstates")["epoch"] == expected


def test_sigkill_at_random_moments_of_a_saving_loop(tmp_path):
    """A child saves epochs 1, 2, ... (latest and epoch_N) until killed; recovery never loses more."""
    folder = str(tmp_path / "run")
    rng = random.Random(0)
    done = 0  # last epoch whose save had returned before the kill
    kills = 0
    for _ in range(25):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child: resume from latest, as a trainer would
            os.close(r)
            Checkpointer(folder)
            epoch = check_set(os.path.join(folder, "latest")) if os.path.exists(os.path.join(folder, "latest.pdstates")) else 0
            while True:
                epoch += 1
                save_epoch(os.path.join(folder, "latest"), epoch)
                save_epoch(os.path.join(folder, f"epoch_{epoch}"), epoch, ema=epoch % 2 == 0)
                os.write(w, f"{epoch}\n".encode())
        os.close(w)
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
        with os.fdopen(r) as f:
            reported = [int(x) for x in f.read().split()]
        done = reported[-1] if reported else done
        if not os.path.exists(os.path.join(folder, "latest.pdstates")) and not done:
            continue  # killed before its first save finished: nothing to lose
        before = snapshot(folder)
        seen = check_set(os.path.join(folder, "latest"))  # the reader first
        assert snapshot(folder) == before
        assert seen in (done, done + 1), (seen, done)
        Checkpointer(folder)  # then the writer's recovery
        latest = check_set(os.path.join(folder, "latest"))
        assert latest in (done, done + 1) and latest >= seen
        assert not [n for n in os.listdir(folder) if n.endswith(".tmp") or n.endswith(".commit")]
        for n in os.listdir(folder):
            if n.startswith("epoch_") and n.endswith(".pdstates"):
                assert check_set(os.path.join(folder, n[: -len(".pdstates")])) == int(n[6:-9])
        done = latest
    assert kills == 25 and done >= 3


def test_readers_never_change_the_folder_and_never_break_the_writer(tmp_path):
    """Readers in a loop (two processes) while the writer saves 40 times: neither side fails."""
    folder = str(tmp_path / "run")
    prefix = os.path.join(folder, "latest")
    save_epoch(prefix, 1)
    reader = (
        "import os, sys, time\n"
        f"sys.path.insert(0, {REPO!r})\n"
        "from tests.engine.test_checkpoint_safety import check_set\n"
        "import paddle\n"
        "end = time.time() + 60\n"
        "n = last = last_w = 0\n"
        "while time.time() < end and not os.path.exists(sys.argv[2]):\n"
        "    e = check_set(sys.argv[1]); assert e >= last, (e, last); last = e\n"
        # a plain paddle.load (PaddleClas's way) of .pdparams alone always gets one whole version, never
        # an older one than before; during the renames it may still be the previous epoch's
        "    w = float(paddle.load(sys.argv[1] + '.pdparams')['w'][0]); assert w >= last_w, (w, last_w); last_w = w\n"
        "    assert w >= e - 1, (w, e)\n"
        "    n += 1\n"
        "    open(sys.argv[3], 'w').close()\n"
        "print(n, last)\n"
    )
    stop_flag = str(tmp_path / "stop")
    ready = [str(tmp_path / f"ready{i}") for i in range(2)]
    readers = [subprocess.Popen([sys.executable, "-c", reader, prefix, stop_flag, flag], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=REPO) for flag in ready]
    try:
        deadline = time.time() + 60
        while not all(os.path.exists(f) for f in ready) and time.time() < deadline:
            assert all(p.poll() is None for p in readers), [p.communicate()[1][-2000:] for p in readers]
            time.sleep(0.05)
        for epoch in range(2, 42):
            save_epoch(prefix, epoch)  # would raise if a reader removed a temporary file
        open(stop_flag, "w").close()
        outs = [p.communicate(timeout=60) for p in readers]
    finally:
        for p in readers:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(readers, outs):
        assert p.returncode == 0, err[-2000:]
        reads, last = map(int, out.split())
        assert reads > 10 and last >= 2
    assert check_set(prefix) == 41


def test_reader_of_a_killed_committed_save_reads_the_new_set(tmp_path):
    prefix = str(tmp_path / "latest")
    save_epoch(prefix, 1)

    def killed_save():
        ck.fault_hook = lambda name: os.kill(os.getpid(), signal.SIGKILL) if name == "rename .pdopt" else None
        save_epoch(prefix, 2)

    fork_and_run(killed_save)
    before = snapshot(str(tmp_path))
    assert check_set(prefix) == 2  # .pdparams renamed, the rest in the journal's temporary files
    assert snapshot(str(tmp_path)) == before


def test_incomplete_set_is_reported_with_complete_alternatives(tmp_path):
    folder = tmp_path / "run"
    save_epoch(str(folder / "best_model"), 1, ema=False)  # as the trainer writes them
    save_epoch(str(folder / "epoch_1"), 1)
    ck.save_checkpoint(str(folder / "best_model_ema"), full(1, 4), None, {"epoch": 1})
    # killed before its first latest existed: resume names what is there
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(str(folder / "latest"))
    msg = str(info.value)
    assert f"no checkpoint at {folder / 'latest'}" in msg
    assert "best_model (epoch 1), epoch_1 (epoch 1)" in msg and "best_model_ema" not in msg
    assert f"-o Global.checkpoints={folder / 'best_model'}" in msg
    assert isinstance(info.value, UserError) and msg.count("\n") == 0
    # a set whose parts do not match its manifest (and no save under way) is incomplete, not read
    save_epoch(str(folder / "latest"), 2)
    paddle.save(full(9), str(folder / "latest.pdopt"))
    t = time.time()
    with pytest.raises(CheckpointError, match="is incomplete.*best_model \\(epoch 1\\)"):
        load_checkpoint(str(folder / "latest"))
    assert time.time() - t < 5


def test_paddleclas_sets_without_manifest_are_read(tmp_path):
    prefix = str(tmp_path / "ppcls_model")
    paddle.save(full(3, 4), prefix + ".pdparams")
    paddle.save(full(3, 4), prefix + ".pdopt")
    paddle.save({"epoch": 3, "metric": 0.5}, prefix + ".pdstates")
    c = load_checkpoint(prefix + ".pdparams")
    assert c.states == {"epoch": 3, "metric": 0.5} and not c.verified and c.ema is None
    assert float(c.optimizer["w"][0]) == 3


def test_failed_write_removes_its_temporaries_and_keeps_the_previous_set(tmp_path, monkeypatch):
    """ENOSPC injected into the second part's write (a real full tmpfs: test_full_disk_... below)."""
    prefix = str(tmp_path / "latest")
    save_epoch(prefix, 1)
    real_write = os.write
    calls = {"n": 0}

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(ck.os, "write", write)
    with pytest.raises(CheckpointWriteError) as info:
        save_epoch(prefix, 2)
    monkeypatch.undo()
    msg = str(info.value)
    assert msg.startswith(f"cannot write checkpoint {prefix}: no space left on device")
    assert "temporary files were removed" in msg and "\n" not in msg
    assert isinstance(info.value, UserError)
    assert sorted(os.listdir(tmp_path)) == ["latest.pdopt", "latest.pdparams", "latest.pdstates",
                                            "latest_ema.pdparams"]
    assert check_set(prefix) == 1
    # a second Ctrl-C in the middle of a save: same clean-up
    ck.fault_hook = lambda name: (_ for _ in ()).throw(KeyboardInterrupt()) if name == "write journal" else None
    try:
        with pytest.raises(KeyboardInterrupt):
            save_epoch(prefix, 3)
    finally:
        ck.fault_hook = None
    assert check_set(prefix) == 1 and len(os.listdir(tmp_path)) == 4


def test_output_dir_errors_name_the_path_and_the_cause(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(WriteError, match=re.escape(f"Global.output_dir: cannot create the folder {blocker}/run: "
                                                   f"{blocker} is a file, not a folder")):
        ensure_writable_dir(str(blocker / "run"))
    with pytest.raises(WriteError, match="is a file, not a folder"):
        ensure_writable_dir(str(blocker))


def test_ema_part_is_per_set_and_never_touches_best_model_ema(tmp_path):
    folder = str(tmp_path)
    ck.save_checkpoint(os.path.join(folder, "best_model_ema"), full(7, 4), None, {"epoch": 1})
    save_epoch(os.path.join(folder, "best_model"), 1, ema=False, n=4)
    save_epoch(os.path.join(folder, "best_model"), 2, ema=False, n=4)
    assert float(paddle.load(os.path.join(folder, "best_model_ema.pdparams"))["w"][0]) == 7
    with pytest.raises(ValueError, match="would overwrite the set"):
        save_epoch(os.path.join(folder, "best_model"), 3, ema=True, n=4)
    save_epoch(os.path.join(folder, "latest"), 1, n=4)
    save_epoch(os.path.join(folder, "latest"), 2, ema=False, n=4)  # a run resumed without EMA
    assert not os.path.exists(os.path.join(folder, "latest_ema.pdparams"))
    np.testing.assert_array_equal(load_checkpoint(os.path.join(folder, "best_model_ema")).weights["w"].numpy(),
                                  np.full([4], 7, np.float32))


def test_eval_tool_on_latest_while_training_saves_every_epoch(tmp_path, digits_dir):
    """tools/eval.py on latest, and an in-process reader loop, while a run saves each epoch."""
    out = str(tmp_path / "o")
    cfg = tiny_config(digits_dir, out, epochs=12, print_batch_step=5)
    cfg["Global"]["max_iters_per_epoch"] = 2
    path = write_config(cfg, str(tmp_path / "c.yaml"))
    log = open(tmp_path / "train.out", "w")
    trainer = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "train.py"), "-c", path],
                               stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    run = os.path.join(out, "PPLCNet_x0_25")
    latest = os.path.join(run, "latest")
    evals = []
    reads = 0
    try:
        deadline = time.time() + 120
        while not os.path.exists(latest + ".pdstates") and time.time() < deadline and trainer.poll() is None:
            time.sleep(0.05)
        evals.append(subprocess.Popen(
            [sys.executable, os.path.join(REPO, "tools", "eval.py"), "-c", path, "-o",
             f"Global.pretrained_model={latest}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        while trainer.poll() is None and time.time() < deadline:
            check = load_checkpoint(latest)
            assert check.states["epoch"] >= 1 and check.optimizer is not None
            reads += 1
            time.sleep(0.02)
        code = trainer.wait(timeout=120)
        outs = [p.communicate(timeout=120)[0] for p in evals]
    finally:
        for p in [trainer, *evals]:
            if p.poll() is None:
                p.kill()
    text = open(tmp_path / "train.out").read()
    assert code == 0, text[-2000:]
    assert reads > 5
    for p, o in zip(evals, outs):
        assert p.returncode == 0 and "[Eval]" in o, o[-2000:]
    assert load_checkpoint(latest).states["epoch"] == 12
    assert not [n for n in os.listdir(run) if n.endswith(".tmp") or n.endswith(".commit")]


def test_output_dir_that_is_a_file_stops_with_one_line(tmp_path, digits_dir):
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    proc = run_tool("train.py", "-c", write_config(tiny_config(digits_dir, str(blocker)), str(tmp_path / "c.yaml")))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-2000:]
    assert f"Global.output_dir: cannot create the folder {blocker}/PPLCNet_x0_25: {blocker} is a file" in text
    assert "Traceback" not in text


@contextmanager
def tmpfs(path, size: str, read_only: bool = False):
    """A small tmpfs at ``path`` (needs root); yields None where mounting is not permitted."""
    os.makedirs(path, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True,
                             text=True).returncode == 0 if os.geteuid() == 0 else False
    try:
        yield str(path) if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_stops_with_one_line_and_leaves_no_temporaries(tmp_path, digits_dir):
    """A real full disk: a 3 MiB tmpfs holds best_model (2 MB) but not latest's temporary files too."""
    with tmpfs(tmp_path / "disk", "3m") as disk:
        if disk is None:
            pytest.skip("mounting a tmpfs needs root (mount -t tmpfs); the ENOSPC injection test covers the protocol")
        out = os.path.join(disk, "o")
        proc = run_tool("train.py", "-c", write_config(tiny_config(digits_dir, out, epochs=3), str(tmp_path / "c.yaml")))
        text = proc.stdout + proc.stderr
        run = os.path.join(out, "PPLCNet_x0_25")
        assert proc.returncode == 2, text[-3000:]
        lines = [line for line in text.splitlines() if "cannot write checkpoint" in line]
        assert len(lines) == 1 and f"cannot write checkpoint {run}/" in lines[0], text[-3000:]
        assert "no space left on device (the disk is full)" in lines[0]
        assert "temporary files were removed" in lines[0]
        assert "Traceback" not in text and "Logging error" not in text
        left = os.listdir(run)
        assert not [n for n in left if n.endswith(".tmp") or n.endswith(".commit")], left
        assert load_checkpoint(os.path.join(run, "best_model")).states["epoch"] == 1


def test_read_only_output_dir_stops_with_one_line(tmp_path, digits_dir):
    if os.geteuid() == 0:
        ctx = tmpfs(tmp_path / "ro", "1m", read_only=True)
        cause = "read-only file system"
    else:
        os.makedirs(tmp_path / "ro")
        os.chmod(tmp_path / "ro", 0o555)
        ctx = nullcontext(str(tmp_path / "ro"))
        cause = "permission denied"
    with ctx as folder:
        if folder is None:
            pytest.skip("mounting a read-only tmpfs needs root")
        out = os.path.join(folder, "o")
        proc = run_tool("train.py", "-c", write_config(tiny_config(digits_dir, out), str(tmp_path / "c.yaml")))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-2000:]
    assert f"Global.output_dir: cannot create the folder {out}/PPLCNet_x0_25: {cause}" in text, text[-2000:]
    assert "Traceback" not in text
