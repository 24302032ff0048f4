"""Loading weights from a local file or an http(s) URL (downloaded once into a cache)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request

import paddle
import paddle.nn as nn

logger = logging.getLogger(__name__)

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "ppcls", "weights")


def cache_dir() -> str:
    return os.environ.get("PPCLS_CACHE_DIR", DEFAULT_CACHE)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, sha256: str | None = None, folder: str | None = None, timeout: float = 30.0) -> str:
    """Download ``url`` once into the cache (atomic); check ``sha256`` when given.

    The expected checksum may also be given in the file name (``name-<sha256 prefix>.pdparams``,
    as torchvision does); the cached file is verified each time it is used.
    """
    folder = folder or cache_dir()
    name = os.path.basename(url.split("?", 1)[0]) or "weights.pdparams"
    target = os.path.join(folder, name)
    if not os.path.isfile(target):
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        os.close(fd)
        try:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                    total = int(resp.headers.get("Content-Length") or 0)
                    from ppcls.utils.progress import progress

                    with progress(total=total or None, desc=f"download {name}", unit="B") as bar:
                        for chunk in iter(lambda: resp.read(1 << 20), b""):
                            out.write(chunk)
                            bar.update(len(chunk))
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise ConnectionError(
                    f"cannot download {url} ({e}). Without network access, put the file at {target} "
                    "or give a local path instead"
                ) from None
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    expected = sha256
    stem = os.path.splitext(name)[0]
    if expected is None and "-" in stem:
        tail = stem.rsplit("-", 1)[1]
        if 8 <= len(tail) <= 64 and all(c in "0123456789abcdef" for c in tail.lower()):
            expected = tail.lower()
    if expected:
        digest = _sha256(target)
        if not digest.startswith(expected.lower()):
            bad = target + ".corrupt"
            shutil.move(target, bad)
            raise ValueError(f"checksum mismatch for {url}: expected {expected}, got {digest[:len(expected)]}; moved to {bad}")
    return target


def resolve_weights(path: str) -> str:
    """Local ``.pdparams`` path for ``path`` (with or without suffix, or a URL)."""
    if path.startswith(("http://", "https://")):
        return download(path)
    candidates = [path] if path.endswith(".pdparams") else [path + ".pdparams", path]
    for cand in candidates:
        if os.path.isfile(cand):
            return cand
    raise FileNotFoundError(f"pretrained weights not found: tried {', '.join(candidates)}")


def load_pretrained(model: nn.Layer, path: str) -> list[str]:
    """Load weights into ``model``; tensors whose shape differs are skipped and logged.

    Returns the names of the skipped or missing tensors.
    """
    from ppcls.engine.checkpoint import recover, strip_suffix

    if not path.startswith(("http://", "https://")):
        recover(strip_suffix(path))
    file = resolve_weights(path)
    state = paddle.load(file)
    own = model.state_dict()
    usable = {}
    skipped = []
    for key, value in state.items():
        if key not in own:
            logger.info("pretrained: %s is not in the model, ignored", key)
            continue
        if list(own[key].shape) != list(value.shape):
            logger.warning(
                "pretrained: skipped %s: shape %s in %s, %s in the model (re-initialised)",
                key, list(value.shape), file, list(own[key].shape),
            )
            skipped.append(key)
            continue
        usable[key] = value
    missing = [k for k in own if k not in state]
    for key in missing:
        logger.warning("pretrained: %s not in %s (kept its initial value)", key, file)
    model.set_state_dict(usable)
    logger.info("loaded %d/%d tensors from %s", len(usable), len(own), file)
    return skipped + missing
