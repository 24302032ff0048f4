"""Package layout that ``pyproject.toml`` cannot express: folders shipped under other names.

* ``configs/`` (the recipes) → ``ppcls/configs/`` (package data; found by :mod:`ppcls._resources`)
* ``tools/`` (the scripts behind ``ppcls <command>``) → ``ppcls/_tools/tools/``
* ``deploy/`` → the top-level ``deploy`` package, as in the repository, so ``deploy/python``
  keeps its absolute ``deploy.python`` imports and still runs when the folder is copied alone.

Everything else (metadata, dependencies, the ``ppcls`` command) is in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

PACKAGES = find_packages(include=["ppcls", "ppcls.*"]) + [
    "ppcls.configs", "ppcls._tools.tools", "deploy", "deploy.python", "deploy.python.backends", "deploy.serving"]

setup(
    packages=PACKAGES,
    package_dir={"ppcls._tools.tools": "tools", "ppcls.configs": "configs"},
    package_data={
        "ppcls": ["utils/*.txt", "ops/csrc/*.cc"],  # the fast CPU kernels compile from source on first use
        "ppcls.configs": ["**/*.yaml", "**/*.yml", "**/*.txt", "**/*.md"],
        "deploy": ["README.md", "configs/*.yaml"],
    },
    include_package_data=False,
)
