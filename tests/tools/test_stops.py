"""SIGTERM/SIGINT during training, NaN losses, file names with spaces (PaddleClas pitfalls)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import paddle

from ppcls.arch.weights import META_KEY
from tests.conftest import REPO, run_tool, tiny_config, write_config


def test_sigterm_saves_latest_stops_workers_and_resumes(tmp_path, digits_dir):
    out = str(tmp_path / "o")
    cfg = tiny_config(digits_dir, out, epochs=200, print_batch_step=1)
    cfg["DataLoader"]["Train"]["loader"] = {"num_workers": 2, "use_shared_memory": True}
    path = write_config(cfg, str(tmp_path / "c.yaml"))
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "train.py"), "-c", path],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.time() + 180
        while time.time() < deadline and "[Train][Epoch 2/200][Iter: 2/" not in open(tmp_path / "run.log").read():
            time.sleep(0.2)
        assert proc.poll() is None, open(tmp_path / "run.log").read()[-2000:]
        sent = time.time()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.time() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    text = open(tmp_path / "run.log").read()
    assert code != 0 and took < 20, text[-2000:]
    assert "SIGTERM received" in text and "training stopped: received SIGTERM" in text
    run = os.path.join(out, "PPLCNet_x0_25")
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")]
    # mid-epoch ("at epoch N, iteration I") or, on a loaded machine, at an epoch's end: the
    # message says how many epochs latest holds; an unfinished epoch is repeated on resume
    completed = int(re.search(r"received SIGTERM .*\(completed epochs: (\d+)\)", text).group(1))
    stopped_in = completed + 1
    states = paddle.load(os.path.join(run, "latest.pdstates"))
    assert states["epoch"] == completed
    # no worker process is left behind
    children = subprocess.run(["pgrep", "-f", path], capture_output=True, text=True).stdout.split()
    assert children == []
    resumed = run_tool("train.py", "-c", path, "-o", f"Global.checkpoints={run}/latest",
                       "-o", f"Global.epochs={stopped_in}")
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert f"continuing at epoch {stopped_in}" in resumed.stdout


# (seconds after the start, whom, signal): the process group is what Ctrl-C in a terminal, systemd's
# stop and Slurm's scancel signal (the loader workers too); the PID alone is `kill PID`. The
# moments cover start-up (Paddle's import, building), training steps, evaluation and saves.
STOP_CASES = [(0.3, "group", signal.SIGTERM), (1.0, "pid", signal.SIGINT), (1.8, "group", signal.SIGINT),
              (2.6, "pid", signal.SIGTERM), (3.3, "group", signal.SIGTERM), (4.1, "group", signal.SIGINT),
              (4.8, "pid", signal.SIGTERM), (5.6, "group", signal.SIGTERM), (6.5, "group", signal.SIGTERM),
              (7.5, "pid", signal.SIGINT)]


def _stop_once(tmp_path, digits_dir, case: int) -> dict:
    delay, whom, sig = STOP_CASES[case]
    out = str(tmp_path / f"o{case}")
    cfg = tiny_config(digits_dir, out, epochs=200, print_batch_step=1)
    cfg["DataLoader"]["Train"]["loader"] = {"num_workers": 2, "use_shared_memory": True}
    cfg["DataLoader"]["Eval"]["loader"] = {"num_workers": 1, "use_shared_memory": True}
    cfg["EMA"] = {"decay": 0.9}
    path = write_config(cfg, str(tmp_path / f"c{case}.yaml"))
    log_path = tmp_path / f"run{case}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "train.py"), "-c", path], stdout=log,
                                stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                                start_new_session=True)
        try:
            time.sleep(delay)
            sent = time.time()
            (os.killpg if whom == "group" else os.kill)(proc.pid, sig)
            code = proc.wait(timeout=60)
            took = time.time() - sent
            gone = False  # the loader workers end with the trainer
            while not gone and time.time() - sent < 30:
                try:
                    os.killpg(proc.pid, 0)
                    time.sleep(0.1)
                except ProcessLookupError:
                    gone = True
        finally:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    text = open(log_path).read()
    return {"case": (delay, whom, sig.name), "code": code, "took": took, "gone": gone, "text": text,
            "run": os.path.join(out, "PPLCNet_x0_25")}


def test_sigterm_and_sigint_to_group_or_pid_at_any_moment_stop_cleanly(tmp_path, digits_dir):
    from concurrent.futures import ThreadPoolExecutor

    from ppcls.engine.checkpoint import load_checkpoint

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: _stop_once(tmp_path, digits_dir, i), range(len(STOP_CASES))))
    kinds = set()
    for r in results:
        where = f"{r['case']}: {r['text'][-1500:]}"
        assert r["code"] == 3 and r["took"] < 20 and r["gone"], where
        sig = r["case"][2]
        assert f"{sig} received: finishing the current step" in r["text"], where
        for bad in ("Traceback", "SystemError", "Aborted at", "DataLoader process"):
            assert bad not in r["text"], where
        stopped = re.search(rf"training stopped: received {sig} (.*?): (.*)", r["text"])
        assert stopped, where
        when, what = stopped.groups()
        kinds.add(when.split(",")[0].split(" of ")[0].replace("at epoch", "in an epoch"))
        files = os.listdir(r["run"]) if os.path.isdir(r["run"]) else []
        assert not [f for f in files if f.endswith(".tmp") or f.endswith(".commit")], where
        if "nothing was trained" in what:
            assert "latest.pdparams" not in files, where
            continue
        done = int(re.search(r"completed epochs: (\d+)", what).group(1))
        latest = load_checkpoint(os.path.join(r["run"], "latest"))
        assert latest.states["epoch"] == done and latest.ema is not None, where
    assert len(kinds) >= 2, kinds  # start-up, mid-epoch, end of an epoch: the moments differ


def test_sigterm_to_a_two_process_launch_stops_both_ranks_together(tmp_path, digits_dir):
    """Ranks decide to stop together (at a log step): none is left waiting in a collective, rank 0 saves."""
    from ppcls.engine.checkpoint import load_checkpoint

    out = str(tmp_path / "out")
    cfg = tiny_config(digits_dir, out, epochs=200, batch_size=8, print_batch_step=2)
    cfg["DataLoader"]["Train"]["loader"] = {"num_workers": 1, "use_shared_memory": True}
    path = write_config(cfg, str(tmp_path / "c.yaml"))
    log_dir = tmp_path / "log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(log_dir),
         os.path.join(REPO, "tools", "train.py"), "-c", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd=str(tmp_path), start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            if (log_dir / "workerlog.0").exists() and "[Train][Epoch 2/" in (log_dir / "workerlog.0").read_text():
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    logs = [(log_dir / f"workerlog.{r}").read_text() for r in (0, 1)]
    for text in logs:
        assert "training stopped: received " in text and "Traceback" not in text, text[-2000:]
    done = int(re.search(r"latest holds the last step \(completed epochs: (\d+)\)", logs[0]).group(1))
    assert load_checkpoint(os.path.join(out, "PPLCNet_x0_25", "latest")).states["epoch"] == done >= 1


LOADER_UNDER_SIGNALS = """
import signal, sys
sys.path.insert(0, sys.argv[1])
import yaml
from ppcls.data import build_dataloader
received = []
signal.signal(signal.SIGTERM, lambda *_: received.append(1))  # the trainer handles stop signals itself
cfg = yaml.safe_load(open(sys.argv[2]))["DataLoader"]["Train"]
cfg["loader"] = {"num_workers": 2, "use_shared_memory": True}
cfg["sampler"]["batch_size"] = 36
loader = build_dataloader(cfg, "Train", 3, 0)
print("ready", flush=True)
for epoch in range(int(sys.argv[3])):  # workers are forked again at each epoch
    loader.batch_sampler.set_epoch(epoch)
    for _ in loader:
        pass
print("done", len(received), flush=True)
"""


def test_loader_workers_survive_group_signals_at_any_moment(tmp_path, digits_dir):
    """SIGTERM to the group every few ms while workers start and run: no worker may die of it.

    Paddle's worker start installs a SIGTERM handler that kills the worker before our
    worker_init_fn can ignore the signal; the signals stay blocked across that window.
    """
    path = write_config(tiny_config(digits_dir, str(tmp_path / "o")), str(tmp_path / "c.yaml"))
    proc = subprocess.Popen([sys.executable, "-c", LOADER_UNDER_SIGNALS, REPO, path, "30"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        head = []
        while not head or head[-1] not in ("ready", ""):
            head.append(proc.stdout.readline().strip())
        assert head[-1] == "ready", head
        sent = 0
        while proc.poll() is None and sent < 2000:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
                sent += 1
            time.sleep(0.003)
        out = proc.communicate(timeout=60)[0]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    # (a signal during the interpreter's own shutdown, after "done", may end it: Python has put the defaults back)
    assert "done" in out and "Traceback" not in out and proc.returncode in (0, -signal.SIGTERM), out[-2000:]
    assert sent > 50


def test_loader_failing_while_stopping_is_a_clean_stop(tmp_path, digits_dir):
    """A worker that dies anyway during a stop (it ignores the signal; say the OOM killer) ends the epoch cleanly."""
    import pytest

    from ppcls.engine.callbacks import StoppedBySignal, StopRequest
    from ppcls.engine.checkpoint import load_checkpoint
    from ppcls.engine.runner import build_training

    cfg = tiny_config(digits_dir, str(tmp_path / "o"), epochs=3)
    folder = str(tmp_path / "o" / "PPLCNet_x0_25")
    stop = StopRequest()
    trainer = build_training(cfg, folder, stop=stop)
    real = trainer.data.loader

    class DyingLoader:
        batch_sampler = real.batch_sampler

        def __len__(self):
            return len(real)

        def __iter__(self):
            for n, batch in enumerate(real):
                if n == 2:
                    stop.request("SIGTERM")
                    raise SystemError("(Fatal) DataLoader process (pid 1) exited is killed by signal: Terminated.")
                yield batch

    trainer.data.loader = DyingLoader()
    with pytest.raises(StoppedBySignal, match="received SIGTERM at epoch 1, iteration 2: .*latest holds the last step"):
        trainer.fit()
    assert load_checkpoint(os.path.join(folder, "latest")).states["epoch"] == 0

    class BrokenLoader(DyingLoader):
        def __iter__(self):
            raise SystemError("worker died")
            yield

    trainer.hooks.stop = StopRequest()  # without a stop, a loader failure is an error as before
    trainer.data.loader = BrokenLoader()
    with pytest.raises(SystemError, match="worker died"):
        trainer.fit()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, digits_dir):
    out = str(tmp_path / "o")
    cfg = tiny_config(digits_dir, out, epochs=6)
    # a sane first epoch, then an absurd learning rate
    cfg["Optimizer"]["lr"] = {"name": "Piecewise", "decay_epochs": [1], "values": [0.01, 1.0e12]}
    cfg["Optimizer"]["regularizer"] = None
    proc = run_tool("train.py", "-c", write_config(cfg, str(tmp_path / "c.yaml")))
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(r"non-finite loss at epoch \d+, iteration \d+/\d+ \(CELoss: (nan|inf|-inf), loss: (nan|inf|-inf)\)", text), text[-1500:]
    assert "non-finite loss at epoch 2" in text and "latest, epoch 1) is kept" in text
    run = os.path.join(out, "PPLCNet_x0_25")
    assert paddle.load(os.path.join(run, "latest.pdstates"))["epoch"] == 1
    for name in ("best_model", "latest"):
        state = paddle.load(os.path.join(run, name + ".pdparams"))
        assert state.pop(META_KEY)["class_names"] == ["digit 0", "digit 1", "digit 2"]  # the data's label_list.txt
        for value in state.values():
            assert np.isfinite(value.numpy()).all(), name


def test_file_names_with_spaces_and_tab_delimiter(tmp_path, digits_dir):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(digits_dir, root)
    lines = []
    for line in open(root / "train_list.txt"):
        rel, label = line.rsplit(None, 1)
        spaced = rel.replace(".png", " photo copy.png")
        os.rename(root / rel, root / spaced)
        lines.append(f"{spaced}\t{label}\n")
    (root / "train_list.txt").write_text("".join(lines).replace("\t", " "))
    (root / "train_tab.txt").write_text("".join(lines))
    from ppcls.data.dataset import ImageNetDataset

    ds = ImageNetDataset(str(root), str(root / "train_list.txt"), None, class_num=3)
    assert ds.paths[0].endswith(" photo copy.png") and len(ds) == 72
    ds_tab = ImageNetDataset(str(root), str(root / "train_tab.txt"), None, delimiter="\t", class_num=3)
    assert ds_tab.paths == ds.paths and ds_tab.labels == ds.labels
