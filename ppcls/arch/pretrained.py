"""Where weights come from: a local path, an http(s) URL, or a model's published file.

Downloads go once into the cache (``PPCLS_CACHE_DIR``, default ``~/.cache/ppcls/weights``),
written to a temporary name and renamed, and are checked against the SHA-256 or MD5 the
publisher gives (or the SHA-256 prefix in a torchvision-style file name). A file already in
the cache is used without any network access. Reading never changes the folder it reads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request

from ppcls.registry import MODELS
from ppcls.utils.errors import ConfigError, DownloadError, MissingFileError, summarize
from ppcls.utils.progress import progress

from .weights.loader import WeightsError
from .weights.published import Published, pick

logger = logging.getLogger(__name__)

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "ppcls", "weights")
CONVERT_HINT = "tools/convert_weights.py --src FILE --model {name} --format auto --out OUT.pdparams"


def cache_dir() -> str:
    return os.environ.get("PPCLS_CACHE_DIR", DEFAULT_CACHE)


def _digest(path: str, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _name_checksum(name: str) -> str | None:
    """The hex SHA-256 prefix of a torchvision-style name (``squeezenet1_1-b8a52dc0.pth``)."""
    stem = name.split(".", 1)[0] if name.endswith(".pth.tar") else os.path.splitext(name)[0]
    if "-" not in stem:
        return None
    tail = stem.rsplit("-", 1)[1].lower()
    return tail if 8 <= len(tail) <= 64 and all(c in "0123456789abcdef" for c in tail) else None


def cached_path(url: str, folder: str | None = None) -> str:
    """Where the download of ``url`` is (or would be) kept."""
    name = os.path.basename(url.split("?", 1)[0]) or "weights.pdparams"
    return os.path.join(folder or cache_dir(), name)


def download(url: str, sha256: str | None = None, md5: str | None = None, folder: str | None = None,
             timeout: float = 30.0) -> str:
    """Download ``url`` once into the cache (atomic) and check it; returns the local path."""
    target = cached_path(url, folder)
    name = os.path.basename(target)
    if not os.path.isfile(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=os.path.dirname(target))
        os.close(fd)
        try:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                    total = int(resp.headers.get("Content-Length") or 0)
                    with progress(total=total or None, desc=f"download {name}", unit="B") as bar:
                        for chunk in iter(lambda: resp.read(1 << 20), b""):
                            out.write(chunk)
                            bar.update(len(chunk))
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise DownloadError(
                    f"cannot download {url} ({e}). Without network access, download it elsewhere and put it "
                    f"at {target} (the cache, set by PPCLS_CACHE_DIR), or give a local path instead"
                ) from None
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    for algorithm, expected in (("sha256", sha256 or _name_checksum(name)), ("md5", md5)):
        if not expected:
            continue
        digest = _digest(target, algorithm)
        if not digest.startswith(expected.lower()):
            bad = target + ".corrupt"
            shutil.move(target, bad)
            raise WeightsError(
                f"checksum mismatch ({algorithm}) for {url}: expected {expected}, got {digest[:len(expected)]}; the file was "
                f"moved to {bad}; download it again"
            )
    return target


def resolve_weights(path: str) -> str:
    """Local file for ``path``: a URL (downloaded), or a file with or without ``.pdparams``."""
    if path.startswith(("http://", "https://")):
        return download(path)
    candidates = [path] if os.path.splitext(path)[1] else [path + ".pdparams", path]
    for cand in candidates:
        if os.path.isfile(cand):
            return cand
    raise MissingFileError(f"weights file not found: tried {', '.join(candidates)}")


def published_weights(name: str) -> tuple[Published, ...]:
    """The published files registered with model ``name``."""
    return tuple(MODELS.metadata(name).get("weights", ()))


def published_file(name: str, use_ssld: bool = False) -> str:
    """Local path of ``name``'s published ImageNet file (SSLD with ``use_ssld``), downloaded once."""
    tag = "ssld" if use_ssld else "imagenet"
    entry = pick(published_weights(name), tag)
    if entry is None and use_ssld:
        having = [n for n in MODELS if pick(published_weights(n), "ssld") is not None]
        raise ConfigError(
            f"Arch.use_ssld: PaddleClas publishes SSLD weights only for {', '.join(having)}; {name} has none "
            "(remove use_ssld to load its ordinary ImageNet weights)"
        )
    if entry is None:
        raise ConfigError(
            f"Arch.pretrained: True: no published ImageNet weights are known for {name}. Convert a checkpoint "
            f"of another code base with {CONVERT_HINT.format(name=name)} and set Arch.pretrained to OUT.pdparams "
            "(see docs/model_zoo.md for what loads)"
        )
    path = download(entry.url, sha256=entry.sha256, md5=entry.md5)
    logger.info("Arch.pretrained: %s's published %s weights (%s) from %s", name, tag, entry.format, path)
    return path


def pretrained_path(name: str, pretrained: bool | str, use_ssld: bool = False) -> str:
    """The local file that ``Arch.pretrained`` (True, a path or a URL) names for model ``name``."""
    if pretrained is True:
        return published_file(name, use_ssld)
    if use_ssld:
        raise ConfigError(
            f"Arch.use_ssld: True selects PaddleClas's SSLD file with Arch.pretrained: True; with "
            f"Arch.pretrained: {summarize(pretrained)} it would do nothing. Remove use_ssld or set pretrained: True"
        )
    text = str(pretrained)
    for entry in published_weights(name):  # a published address keeps its published checksum
        if entry.url == text:
            return download(entry.url, sha256=entry.sha256, md5=entry.md5)
    return resolve_weights(text)
