"""tools/gen_model_files.py: the files derived from the model registry are committed up to date."""

from __future__ import annotations

import glob
import importlib
import os

from ppcls.registry import MODELS
from tests.conftest import REPO


def load_tool():
    """The checkout's tools/gen_model_files.py (the repository root is on sys.path, see conftest)."""
    return importlib.import_module("tools.gen_model_files")


def test_committed_generated_files_are_up_to_date(tmp_path, capsys):
    tool = load_tool()
    assert tool.main(["--out", str(tmp_path)]) == 0
    written = sorted(os.path.relpath(p, tmp_path) for p in glob.glob(str(tmp_path / "**" / "*.*"), recursive=True))
    assert "docs/model_zoo.md" in written
    stale = []
    for rel in written:
        with open(tmp_path / rel, encoding="utf-8") as new, open(os.path.join(REPO, rel), encoding="utf-8") as old:
            if new.read() != old.read():
                stale.append(rel)
    assert not stale, f"regenerate with python tools/gen_model_files.py: {stale}"
    # no config is left behind for a model that is no longer registered
    committed = sorted(os.path.relpath(p, REPO)
                       for p in glob.glob(os.path.join(REPO, "test_tipc", "configs", "*", "*_train_infer_python.txt")))
    assert committed == [r for r in written if r.startswith("test_tipc/configs/")]


def test_families_table_comes_from_the_metadata():
    from ppcls.engine.model_summary import families_markdown

    table = families_markdown()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()[2:]}
    assert sorted(rows) == sorted({MODELS.metadata(n)["family"] for n in MODELS.names()})
    assert "PPLCNet (generic: `scale`)" in rows["PPLCNet"] and "ShuffleNetV2_swish" in rows["ShuffleNet"]
    assert "| 3x224x224 | 0.485, 0.456, 0.406 | 0.229, 0.224, 0.225 | `configs/ImageNet/ParNet/` |" in rows["ParNet"]
