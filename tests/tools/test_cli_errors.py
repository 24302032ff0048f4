"""What a tool prints when it fails: the user's mistakes in one bounded line (exit 2), bugs with
their traceback and a sentence saying so (exit 1)."""

from __future__ import annotations

import errno
import importlib.util
import logging
import os
import threading
import time

import pytest

from ppcls.utils.cli import BUG_SENTENCE, run_tool
from ppcls.utils.errors import ConfigError
from tests.conftest import REPO, tiny_config, write_config
from tests.conftest import run_tool as run_tool_process

# what Paddle's to_static put into its ValueError: the whole input tensor, thousands of lines
TENSOR_TEXT = "Tensor(shape=[32, 3, 32, 32], dtype=float32, place=Place(cpu), stop_gradient=True,\n" + "\n".join(
    "       [[-1.84559977, -1.84559977, -1.84559977, ..., -1.84559977, -1.84559977, -1.84559977],"
    for _ in range(20_000)
)


@pytest.fixture
def ppcls_logging():
    """``run_tool`` sets up the ``ppcls`` logger for a tool; put the test session's back afterwards."""
    root = logging.getLogger("ppcls")
    saved = (list(root.handlers), root.propagate, root.level)
    hook = threading.excepthook
    yield
    threading.excepthook = hook
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.propagate, root.level = saved[1], saved[2]


def _run_in_process(main, capsys, argv=None) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        run_tool(main, argv)
    out = capsys.readouterr()
    return e.value.code, out.out + out.err


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " ERROR: " in line]


# ----------------------------------------------------------------------------- user errors: one line, exit 2


def test_config_mistake_is_one_line_with_the_key_first(tmp_path, digits_dir):
    path = write_config(tiny_config(digits_dir, str(tmp_path)), str(tmp_path / "c.yaml"))
    proc = run_tool_process("train.py", "-c", path, "-o", "Global.epoch=2")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-2000:]
    assert "Traceback" not in text and BUG_SENTENCE not in text
    lines = _error_lines(text)
    ours = [line for line in text.splitlines() if line.startswith("[")]  # the tool's log lines
    assert len(lines) == 1 and ours == lines, text
    assert lines[0].split(" ERROR: ", 1)[1].startswith("Global.epoch: unknown key. Did you mean: epochs?")


def test_a_data_mistake_after_start_is_not_buried_under_the_config_dump(tmp_path, digits_dir):
    cfg = tiny_config(digits_dir, str(tmp_path / "out"))
    cfg["DataLoader"]["Train"]["dataset"]["cls_label_path"] = str(tmp_path / "no_such_list.txt")
    proc = run_tool_process("train.py", "-c", write_config(cfg, str(tmp_path / "c.yaml")))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-2000:]
    assert "Traceback" not in text
    assert _error_lines(text)[-1].endswith(f"data list not found: {tmp_path / 'no_such_list.txt'}")
    # the merged config is logged to the run's train.log, not to the screen
    assert "config:" not in text and "cls_label_path" not in text
    log = open(tmp_path / "out" / "PPLCNet_x0_25" / "train.log", encoding="utf-8").read()
    assert "config:" in log and "cls_label_path" in log


def test_billion_laughs_config_stops_fast_with_a_short_message(tmp_path):
    with open(os.path.join(REPO, "configs", "quick_start", "PPLCNet_x0_25_digits.yaml"), encoding="utf-8") as f:
        text = f.read()
    nest = ["  l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    nest += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 6)]  # 9^6 values
    path = tmp_path / "laughs.yaml"
    path.write_text("Anchors:\n" + "\n".join(nest) + "\n" + text.replace("Global:\n", "Global:\n  epochs: *l5\n", 1),
                    encoding="utf-8")
    start = time.time()
    proc = run_tool_process("train.py", "-c", str(path), timeout=120)
    took = time.time() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and took < 60 and len(out) < 2000, (proc.returncode, took, out[:3000])
    assert "YAML aliases" in out and "Traceback" not in out


def test_a_long_user_error_message_is_cut(capsys, ppcls_logging):
    def main(argv):
        raise ConfigError("Global.epochs: expected int, got " + TENSOR_TEXT)

    code, text = _run_in_process(main, capsys)
    assert code == 2
    assert len(text) < 3000 and "more characters not shown" in text
    assert "Traceback" not in text


def test_os_errors_about_a_path_are_one_line(capsys, ppcls_logging):
    def main(argv):
        raise PermissionError(errno.EACCES, "Permission denied", "/read-only/output/PPLCNet_x0_25/train.log")

    code, text = _run_in_process(main, capsys)
    assert code == 2 and "Traceback" not in text
    assert _error_lines(text)[0].endswith("/read-only/output/PPLCNet_x0_25/train.log: Permission denied")

    def full(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "out/latest.pdparams.tmp")

    code, text = _run_in_process(full, capsys)
    assert code == 2 and "out/latest.pdparams.tmp: No space left on device" in text


# ----------------------------------------------------------------------------- bugs: traceback, bug sentence, exit 1


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("exc_type", [ValueError, KeyError, RuntimeError])
def test_a_bug_in_a_model_prints_its_traceback_and_says_it_is_a_bug(exc_type, monkeypatch, capsys, ppcls_logging):
    from ppcls.arch.backbone.pp_lcnet import PPLCNet

    def broken_forward(self, x):
        raise exc_type("The decorated function forward requires 0 arguments but received 1 with (" + TENSOR_TEXT)

    monkeypatch.setattr(PPLCNet, "forward", broken_forward)
    tool = _load_tool("model_summary")
    code, text = _run_in_process(tool.main, capsys, ["--model", "PPLCNet_x0_25", "--input_size", "32", "--no_deploy"])
    assert code == 1, text[-2000:]
    assert "Traceback (most recent call last)" in text and "broken_forward" in text
    assert f"{exc_type.__name__}: " in text and BUG_SENTENCE in text
    assert len(text) < 20_000, len(text)  # the tensor is cut, not printed


def test_user_errors_of_every_kind_are_not_reported_as_bugs(capsys, ppcls_logging):
    from ppcls.arch.weights import WeightsError
    from ppcls.utils import errors as E

    kinds = [E.ConfigError("a"), E.UnknownNameError("b"), E.ArgumentError("c"), E.DataError("d"),
             E.MissingFileError("e"), E.PathExistsError("f"), E.DownloadError("g"), E.DependencyError("h"),
             E.DeviceError("i"), WeightsError("j")]
    for exc in kinds:
        def main(argv, exc=exc):
            raise exc

        code, text = _run_in_process(main, capsys)
        assert code == 2 and BUG_SENTENCE not in text, (type(exc).__name__, text)
        assert _error_lines(text)[0].endswith(f"ERROR: {exc.args[0]}")


def test_a_user_error_raised_in_a_loader_worker_is_its_own_message(capsys, ppcls_logging):
    from ppcls.utils.errors import DataError

    def main(argv):  # how Paddle re-raises an exception of a DataLoader worker process
        raise DataError(
            "DataLoader worker(1) caught DataError with message:\nTraceback (most recent call last):\n"
            '  File "ppcls/data/transforms/ops.py", line 175, in __call__\n    raise DataError(...)\n'
            "ppcls.utils.errors.DataError: CropImage: image 8x8 is smaller than the crop 32x32\n"
        )

    code, text = _run_in_process(main, capsys)
    assert code == 2
    assert _error_lines(text) == [line for line in text.splitlines() if line.strip()]
    assert _error_lines(text)[0].endswith(
        "ERROR: CropImage: image 8x8 is smaller than the crop 32x32 (in DataLoader worker 1)")


def test_a_data_error_in_a_worker_process_is_one_line(tmp_path, digits_dir):
    # with num_workers > 0 Paddle re-raises the worker's error in a reader thread and the main
    # thread only sees "SystemError: Blocking queue is killed"; the user's error is what is shown
    cfg = tiny_config(digits_dir, str(tmp_path / "out"), epochs=1)
    cfg["DataLoader"]["Train"]["dataset"]["transform_ops"].insert(2, {"CropImage": {"size": 64}})
    cfg["DataLoader"]["Train"]["loader"]["num_workers"] = 1
    proc = run_tool_process("train.py", "-c", write_config(cfg, str(tmp_path / "c.yaml")))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-3000:]
    assert "Traceback" not in text and BUG_SENTENCE not in text
    assert _error_lines(text)[-1].endswith(
        "ERROR: CropImage: image 32x32 is smaller than the crop 64x64 (in DataLoader worker 0)")
