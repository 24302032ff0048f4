"""The exported folder: readable by other users (a service account), as a plain ``mkdir`` would make it."""

from __future__ import annotations

import os
import stat

from ppcls.arch import build_model
from ppcls.engine.export import export_model


def test_export_folder_has_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        out = export_model(build_model({"name": "PPLCNet_x0_25", "class_num": 3}), str(tmp_path / "inf"),
                           [3, 32, 32], "PPLCNet_x0_25", 3)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o755
    for name in os.listdir(out):
        assert os.stat(os.path.join(out, name)).st_mode & stat.S_IROTH, name
