"""``python -m ppcls <command> ...``: the same as the ``ppcls`` command."""

from ppcls.commands import main

main()
