"""Train a model from a config: python tools/train.py -c CONFIG [-o Key.path=value ...]

Exit status: 0 trained; 2 a problem with the config, data or files (one message); 3 stopped:
by SIGTERM/SIGINT (``latest`` written when a step had finished) or by a non-finite loss;
130 a second signal stopped it at once; 1 a bug (traceback).
"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

# First of all, before Paddle is imported (seconds): SIGTERM/SIGINT from now on ask for a clean
# stop instead of killing the process with no message.
from ppcls.engine.callbacks import EXIT_STOPPED, install_stop_handlers, stop_signals_held  # noqa: E402

STOP = install_stop_handlers()

with stop_signals_held(STOP):  # Paddle's import installs its own SIGTERM handler; ours is put back
    from ppcls.utils.cli import load, parser, run_tool  # noqa: E402


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    from ppcls.engine.runner import train
    from ppcls.engine.trainer import NonFiniteLossError, StoppedBySignal

    try:
        train(load(args), stop=STOP)
    except (NonFiniteLossError, StoppedBySignal) as e:
        print(f"training stopped: {e}", file=sys.stderr)
        return EXIT_STOPPED
    return 0


if __name__ == "__main__":
    run_tool(main)
