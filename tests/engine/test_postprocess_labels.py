"""ppcls's Topk (tools/infer.py) and every place a label list meets a class count (issue 14).

A label list must name exactly the classes 0 .. class_num - 1: Infer.PostProcess.class_id_map_file
against Arch.class_num (and the model's output width), the export's label_list.txt, and
DataLoader's label_list_path. Results have one structure: ``label_names`` always, ``[]`` without a list.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from ppcls.engine.postprocess import Topk
from ppcls.utils.errors import ConfigError, DataError, UserError
from tests.conftest import run_tool, tiny_config, write_config


def write_labels(path, n: int, fmt: str = "{i} name {i}\n") -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(fmt.format(i=i) for i in range(n))
    return str(path)


PROBS = np.array([[0.1, 0.5, 0.2, 0.15, 0.05], [0.3, 0.1, 0.1, 0.4, 0.1]], dtype=np.float32)


def test_topk_structure_with_and_without_a_label_list(tmp_path):
    plain = Topk(topk=2, class_num=5)(PROBS, ["a.jpg", "b.jpg"])
    assert plain == [
        {"class_ids": [1, 2], "scores": [0.5, 0.2], "file_name": "a.jpg", "label_names": []},
        {"class_ids": [3, 0], "scores": [0.4, 0.3], "file_name": "b.jpg", "label_names": []},
    ]
    assert list(plain[0]) == ["class_ids", "scores", "file_name", "label_names"]  # deploy's order too
    named = Topk(topk=2, class_id_map_file=write_labels(tmp_path / "l.txt", 5), class_num=5)(PROBS)
    assert named[0] == {"class_ids": [1, 2], "scores": [0.5, 0.2], "label_names": ["name 1", "name 2"]}
    tie = Topk(topk=3)(np.array([[0.25, 0.5, 0.25]], np.float32))
    assert tie[0]["class_ids"] == [1, 0, 2]  # ties: the smaller class id first, as deploy


def test_topk_label_list_length_must_equal_class_num(tmp_path):
    big = write_labels(tmp_path / "big.txt", 100_000)
    with pytest.raises(DataError) as e:
        Topk(topk=5, class_id_map_file=big, class_num=10)
    msg = str(e.value)
    assert "Infer.PostProcess.class_id_map_file" in msg and big in msg
    assert "100,000 class names" in msg and "Arch.class_num is 10" in msg
    with pytest.raises(DataError, match="has 3 class names but Arch.class_num is 5"):
        Topk(class_id_map_file=write_labels(tmp_path / "small.txt", 3), class_num=5)
    # without class_num the scores' width decides
    topk = Topk(class_id_map_file=write_labels(tmp_path / "four.txt", 4))
    with pytest.raises(DataError, match="has 4 class names but the model's output width is 5"):
        topk(PROBS)


def test_label_list_ids_duplicates_and_delimiter(tmp_path):
    from ppcls.data.label_list import check_label_list, read_label_list

    path = str(tmp_path / "shifted.txt")
    with open(path, "w") as f:
        f.writelines(f"{i + 1} x\n" for i in range(5))  # 1..5 for the classes 0..4
    with pytest.raises(DataError, match=r"class ids outside \[0, 5\) .*: 5"):
        check_label_list(read_label_list(path), 5, path, "label_list_path", "Arch.class_num")
    with open(path, "w") as f:
        f.write("0 a\n1 b\n0 c\n")
    with pytest.raises(DataError, match=f"{path}:3: class id 0 is given twice"):
        read_label_list(path)
    csv = write_labels(tmp_path / "c.csv", 5, "{i},name, with comma {i}\n")
    out = Topk(topk=1, class_id_map_file=csv, class_num=5, delimiter=",")(PROBS)
    assert out[0]["label_names"] == ["name, with comma 1"]
    with pytest.raises(ConfigError, match="Infer.PostProcess.topk"):
        Topk(topk=True)
    with pytest.raises(UserError, match="not found"):
        Topk(class_id_map_file=str(tmp_path / "missing.txt"))


def test_export_refuses_a_label_list_of_other_classes(tmp_path):
    from ppcls.arch import build_model
    from ppcls.engine.export import export_model

    model = build_model({"name": "PPLCNet_x0_25", "class_num": 10})
    labels = write_labels(tmp_path / "labels.txt", 100_000)
    save = tmp_path / "export"
    with pytest.raises(DataError, match="100,000 class names but Arch.class_num is 10"):
        export_model(model, str(save), [3, 32, 32], "PPLCNet_x0_25", 10, label_list_file=labels)
    assert not save.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".export")]


def test_dataset_label_list_path_must_fit_class_num(digits_dir, tmp_path):
    from ppcls.data.dataset import ImageNetDataset

    ops = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 16}}]
    lst = os.path.join(digits_dir, "train_list.txt")
    ok = ImageNetDataset(digits_dir, lst, ops, class_num=3, label_list_path=os.path.join(digits_dir, "label_list.txt"))
    assert ok.class_names == ["digit 0", "digit 1", "digit 2"]
    big = write_labels(tmp_path / "big.txt", 100_000)
    with pytest.raises(DataError, match=f"label_list_path: {big} has 100,000 class names but Arch.class_num is 3"):
        ImageNetDataset(digits_dir, lst, ops, class_num=3, label_list_path=big)


def test_tools_infer_with_a_label_list_of_other_classes_stops_in_one_line(digits_dir, tmp_path):
    import paddle

    from ppcls.arch import build_model

    model = build_model({"name": "PPLCNet_x0_25", "class_num": 10})
    weights = str(tmp_path / "w")
    paddle.save(model.state_dict(), weights + ".pdparams")
    cfg = tiny_config(digits_dir, str(tmp_path / "out"), class_num=10)
    cfg["Global"]["pretrained_model"] = weights
    big = write_labels(tmp_path / "labels.txt", 100_000)
    cfg["Infer"]["PostProcess"]["class_id_map_file"] = big
    cfg["Infer"]["infer_imgs"] = os.path.join(digits_dir, "images", "0")
    proc = run_tool("infer.py", "-c", write_config(cfg, str(tmp_path / "c.yaml")), timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "100,000 class names but Arch.class_num is 10" in out and big in out
