"""The repository's ``tools/`` ship in the wheel as ``ppcls._tools.tools`` (see ``setup.py``).

In a source checkout this package is empty and ``ppcls`` sub-commands import ``tools/`` from the
repository root instead (:mod:`ppcls.commands`). The extra level keeps the folder a tool script puts
on ``sys.path`` (its parent's parent, for a checkout's root) free of top-level names.
"""
