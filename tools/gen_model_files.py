"""Regenerate every file derived from the model registry; run it after adding or changing a model.

  python tools/gen_model_files.py             # rewrite the files that changed
  python tools/gen_model_files.py --check     # exit 1 when a generated file is missing or differs
  python tools/gen_model_files.py --out DIR   # write them all under DIR instead of the checkout

The files: test_tipc/configs/<Family>/<Name>_train_infer_python.txt (rendered by
test_tipc/gen_configs.py) and the tables of docs/model_zoo.md between their markers: families
(each family's registry metadata), model-zoo (parameters and MACs counted at each model's input
size) and weights (published files). Everything comes from the registry
(``MODELS.metadata(name)``, declared beside each entry function) and the recipes, so hand edits to
these files are lost on the next run. Works in a source checkout (it needs test_tipc/ and docs/).
"""

import argparse
import importlib.util
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

from ppcls.engine.model_summary import zoo_doc  # noqa: E402
from ppcls.utils.cli import run_tool  # noqa: E402
from ppcls.utils.errors import MissingFileError  # noqa: E402

ZOO_DOC = "docs/model_zoo.md"
GEN_CONFIGS = "test_tipc/gen_configs.py"


def _gen_configs():
    """test_tipc/gen_configs.py as a module (test_tipc is a folder of scripts, not a package)."""
    path = os.path.join(ROOT, GEN_CONFIGS)
    if not os.path.isfile(path):
        raise MissingFileError(f"{path} not found: run this tool from a source checkout of the project")
    spec = importlib.util.spec_from_file_location("gen_configs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_files(gen=None) -> dict[str, str]:
    """Relative path -> text of every file this tool writes (``gen``: test_tipc/gen_configs.py, loaded)."""
    import ppcls.arch  # noqa: F401  (registers every model)

    files = dict((gen or _gen_configs()).config_files())
    with open(os.path.join(ROOT, ZOO_DOC), encoding="utf-8") as f:
        files[ZOO_DOC] = zoo_doc(f.read(), ZOO_DOC)
    return files


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--check", action="store_true", help="only report files that are missing or out of date")
    which.add_argument("--out", metavar="DIR", help="write every file under DIR instead of the checkout")
    args = p.parse_args(argv)
    gen = _gen_configs()
    files = generated_files(gen)
    if args.out:
        gen.write_files(files, args.out)
        print(f"{len(files)} file(s) written under {args.out}")
        return 0
    stale = gen.stale_files(files, ROOT)
    if not args.check:
        gen.write_files({rel: files[rel] for rel in stale}, ROOT)
    verb = "out of date or missing" if args.check else "written"
    print(f"{len(stale)} file(s) {verb}" + (":\n  " + "\n  ".join(stale) if stale else ""))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    run_tool(main)
