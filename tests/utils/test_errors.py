"""The error types and the bounded text of messages that show a user's value."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ppcls.utils.errors import (
    ConfigError,
    DataError,
    DownloadError,
    MissingFileError,
    PathExistsError,
    UnknownNameError,
    UserError,
    bound_text,
    summarize,
)


def laughs(levels: int, width: int = 9) -> list:
    """A "billion laughs" value: ``width ** levels`` leaves, but only ``levels`` distinct lists."""
    value: list = ["lol"] * width
    for _ in range(levels - 1):
        value = [value] * width
    return value


def test_user_errors_keep_their_builtin_bases():
    assert issubclass(ConfigError, (UserError, ValueError))
    assert issubclass(UnknownNameError, KeyError) and issubclass(UnknownNameError, ConfigError)
    assert issubclass(DataError, ValueError)
    assert issubclass(MissingFileError, FileNotFoundError) and issubclass(PathExistsError, FileExistsError)
    assert issubclass(DownloadError, ConnectionError)
    # a KeyError-derived message is the plain sentence, not its repr
    assert str(UnknownNameError("unknown model name 'X'")) == "unknown model name 'X'"
    assert str(MissingFileError("data list not found: a.txt")) == "data list not found: a.txt"


def test_weights_and_download_errors_are_user_errors():
    from ppcls.arch.weights import WeightsError

    assert issubclass(WeightsError, UserError) and issubclass(WeightsError, ValueError)


def test_summarize_arrays_by_shape_and_dtype():
    import paddle

    assert summarize(np.zeros((32, 3, 224, 224), np.float32)) == "ndarray(shape=[32, 3, 224, 224], dtype=float32)"
    assert summarize(paddle.zeros([32, 3, 32, 32])) == "Tensor(shape=[32, 3, 32, 32], dtype=float32)"
    assert summarize({"x": np.ones(3, np.int64)}) == "{'x': ndarray(shape=[3], dtype=int64)}"


@pytest.mark.parametrize("value, needle", [
    ("y" * 100_000, "(100,000 characters)"),
    (b"\0" * 5000, "(5,000 bytes)"),
    (list(range(100_000)), "(100,000 items)"),
    ({f"k{i}": i for i in range(50_000)}, "(50,000 entries)"),
    (10 ** 5000, "digits"),  # beyond Python's int-to-str limit: must not raise
    (laughs(12), "(9 items)"),  # 9^12 leaves
], ids=["str", "bytes", "list", "dict", "huge-int", "billion-laughs"])
def test_summarize_is_bounded_and_says_how_much(value, needle):
    start = time.perf_counter()
    text = summarize(value, 200)
    assert time.perf_counter() - start < 0.1
    assert len(text) < 400 and "\n" not in text
    assert needle in text


def test_summarize_short_values_are_their_repr():
    for value in ("relu", 3, 0.5, None, True, [1, 2], (1,), {"a": [1, 2]}):
        assert summarize(value) == repr(value)


def test_summarize_survives_a_broken_repr():
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "repr failed" in summarize(Broken())


def test_bound_text_cuts_characters_and_lines():
    assert bound_text("short") == "short"
    text = bound_text("x" * 10_000, max_chars=100)
    assert len(text) < 200 and "9,900 more characters not shown" in text
    text = bound_text("line\n" * 1000, max_lines=5)
    assert text.count("\n") == 4 and "more characters not shown" in text


def test_a_deploy_error_in_a_tool_is_reported_like_a_ppcls_user_error(tmp_path):
    """One base (deploy/python/errors.py): the same one line and exit status 2, with no translation."""
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("from deploy.python.errors import DeployFileError\n"
            "from ppcls.utils.cli import run_tool\n"
            "from ppcls.utils.errors import MissingFileError\n"
            "def main(argv):\n"
            "    raise {}('--calib_dir: no such folder: /nowhere')\n"
            "run_tool(main, [])\n")
    seen = []
    for kind in ("MissingFileError", "DeployFileError"):
        proc = subprocess.run([sys.executable, "-c", code.format(kind)], capture_output=True, text=True,
                              cwd=REPO, timeout=300)
        text = proc.stdout + proc.stderr
        assert "Traceback" not in text, text[-2000:]
        seen.append((proc.returncode, [line.split(" ERROR: ", 1)[1] for line in text.splitlines() if " ERROR: " in line]))
    assert seen[0] == seen[1] == (2, ["--calib_dir: no such folder: /nowhere"])
