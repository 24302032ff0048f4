"""Train a model from a config: python tools/train.py -c CONFIG [-o Key.path=value ...]"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.utils.cli import load, parser, run_tool  # noqa: E402


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    from ppcls.engine.runner import train
    from ppcls.engine.trainer import NonFiniteLossError, StoppedBySignal

    try:
        train(load(args))
    except (NonFiniteLossError, StoppedBySignal) as e:
        print(f"training stopped: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    run_tool(main)
