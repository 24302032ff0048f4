"""tools/benchmark_inference.py: a tiny run, and the section written between the markers."""

from __future__ import annotations

import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("benchmark_inference", os.path.join(REPO, "tools", "benchmark_inference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_write_section_replaces_only_between_markers(tool, tmp_path):
    path = tmp_path / "benchmarks.md"
    tool.write_section(str(path), "first")
    text = path.read_text()
    assert text.startswith("# Benchmarks") and f"{tool.MARK_START}\nfirst\n{tool.MARK_END}" in text
    path.write_text(f"# Benchmarks\n\n## Training\nkeep me\n\n{tool.MARK_START}\nold\n{tool.MARK_END}\n\n## Data\nme too\n")
    tool.write_section(str(path), "new table")
    assert path.read_text() == (f"# Benchmarks\n\n## Training\nkeep me\n\n{tool.MARK_START}\nnew table\n"
                                f"{tool.MARK_END}\n\n## Data\nme too\n")
    other = tmp_path / "other.md"
    other.write_text("# Mine\ntext\n")
    tool.write_section(str(other), "t")
    assert other.read_text() == f"# Mine\ntext\n\n{tool.MARK_START}\nt\n{tool.MARK_END}\n"
    broken = tmp_path / "broken.md"
    broken.write_text(f"{tool.MARK_START}\nno end\n")
    with pytest.raises(ValueError, match="only one of the markers"):
        tool.write_section(str(broken), "t")


def test_tiny_benchmark_run(tool, tmp_path, capsys):
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\n## Other section\nkept\n")
    images = tmp_path / "imgs"
    images.mkdir()
    import cv2
    from skimage import data

    cv2.imwrite(str(images / "chelsea.jpg"), data.chelsea()[:, :, ::-1])
    code = tool.main(["--models", "PPLCNet_x0_25", "--image_size", "64", "--class_num", "10", "--repeats", "2",
                      "--warmup", "1", "--batch_sizes", "1,2", "--rounds", "2", "--overhead_repeats", "1", "--stream_images", "3", "--images", str(images), "--output", str(out)])
    assert code == 0
    text = out.read_text()
    assert "## Other section\nkept" in text
    section = text[text.index(tool.MARK_START):text.index(tool.MARK_END)]
    rows = [ln for ln in section.splitlines() if ln.startswith("| PPLCNet_x0_25 |")]
    assert len(rows) == 5  # three backends, the overhead row and the folder (stream) row
    for backend in ("paddle+oneDNN", "| paddle |", "onnxruntime"):
        assert any(backend in r for r in rows)
    for row in rows[:3]:
        assert float(row.split("|")[-2]) <= 1e-4  # the deployed graph equals the eager forward
    assert "raw ORT" in section and "b2 QPS" in section
    overhead = rows[3].split("|")[2:-1]
    folder_row = rows[4].split("|")[2:-1]
    assert len(folder_row) == 6 and "workers x 1 thread" in section
    assert sum("**" in c for c in folder_row[:4]) == 1  # the fastest of the four folder runs is marked
    assert all(float(c.strip(" *").split(" (")[0]) > 0 for c in folder_row)
    assert all(float(v.split(" (")[0]) > 0 for v in overhead[:9])  # five timings and four ratios
    assert overhead[-1].strip().split(" (")[0] in tool.BACKENDS  # the fastest backend at batch 1
    with pytest.raises(KeyError, match="unknown model name"):
        tool.main(["--models", "NoSuchNet", "--no_write"])
