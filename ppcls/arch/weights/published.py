"""Published weights of a model, kept with its registry entry (``@MODELS.register(weights=...)``).

``Arch.pretrained: True`` takes the ``imagenet`` entry (``ssld`` with ``Arch.use_ssld: True``),
downloads it into the cache (:func:`ppcls.arch.pretrained.download`) and loads it through the
format it names. Addresses are the publishers' own: PaddleClas's ``MODEL_URLS`` (PaddleClas
publishes no checksums) and torchvision's files (whose names carry a SHA-256 prefix).
"""

from __future__ import annotations

from dataclasses import dataclass

PADDLECLAS_ROOT = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/"
TORCHVISION_ROOT = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class Published:
    """One published weights file for a model."""

    url: str
    format: str  # a WEIGHT_FORMATS name (or "ppcls")
    tag: str = "imagenet"  # "imagenet" | "ssld" | "torchvision"
    sha256: str | None = None
    md5: str | None = None

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def paddleclas(name: str, folder: str = "", ssld: bool = False) -> tuple[Published, ...]:
    """PaddleClas's file for ``name`` (``folder`` as in its MODEL_URLS), plus its SSLD file."""
    base = f"{PADDLECLAS_ROOT}{folder + '/' if folder else ''}{name}"
    out = [Published(f"{base}_pretrained.pdparams", "paddleclas")]
    if ssld:
        out.append(Published(f"{base}_ssld_pretrained.pdparams", "paddleclas", tag="ssld"))
    return tuple(out)


def torchvision(file_name: str) -> Published:
    """A torchvision file (``squeezenet1_1-b8a52dc0.pth``): the name's hex tail is its SHA-256 prefix."""
    return Published(f"{TORCHVISION_ROOT}{file_name}", "torchvision", tag="torchvision")


def pick(entries: tuple[Published, ...], tag: str) -> Published | None:
    return next((p for p in entries if p.tag == tag), None)
