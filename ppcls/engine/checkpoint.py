"""Checkpoint sets that a kill at any moment, or a reader at any moment, never sees broken.

A checkpoint ``{prefix}`` (``latest``, ``best_model``, ``epoch_3``, ...) is a set of files:
``.pdparams`` (the weights: a plain state dict, readable by ``paddle.load`` as in
PaddleClas), ``.pdopt`` (optimizer and LR state), ``_ema.pdparams`` (the EMA weights of that
same moment, in runs with EMA; ``best_model`` has none, as ``best_model_ema.pdparams`` is the
EMA-selected best model's own set) and ``.pdstates`` (epoch, metrics, and the set's
*manifest*: size and SHA-256 of each other part, under :data:`MANIFEST_KEY`).

Save protocol (the writer, :func:`save_checkpoint`):

1. every part is serialised in memory; ``.pdstates`` gets the manifest of the others;
2. each part is written to a new, unique temporary file ``.{name}{part}.{token}.tmp``
   (``O_EXCL``), fsynced; then the folder is fsynced;
3. **commit**: the journal ``.{name}.commit`` (JSON naming each part's temporary file, size
   and SHA-256) is written to its own temporary name, fsynced and renamed into place. A rename
   is atomic, so the journal is either absent — nothing visible has changed and the previous
   set stands — or whole, and then it names complete files whose contents it can check;
4. each temporary file is renamed to its final name, parts the new set lacks are removed,
   the folder is fsynced and the journal removed.

A save that fails (a full disk, a read-only folder, a second Ctrl-C) before the commit
removes its own temporary files and leaves the previous set as it was.

Recovery is the writer's alone: :class:`Checkpointer` (at the start of a run) rolls a journal
forward — a part is renamed if its temporary file is there with the recorded size and
checksum, or is already in place — and removes temporary files no journal names (a save
killed in step 2).

Readers never rename, write or delete anything. :func:`load_checkpoint` reads ``.pdstates``
and every part its manifest lists into memory, checks sizes and checksums, and parses the
bytes it checked; while a journal exists (a save between steps 3 and 4, running or killed
there) it takes the newer set the journal names, from temporary or already renamed files. If
neither is whole it tries again briefly, then says the checkpoint is incomplete and names
the complete checkpoints in the folder. A single file such as ``latest.pdparams`` (what
``tools/eval.py`` reads) is only ever replaced by a rename, so it is always one whole version.
Sets without a manifest (PaddleClas's, or written before it existed) are read as they are.

Why a journal and not a directory per save renamed into place: the files users and
PaddleClas tools know are ``latest.pdparams`` and its siblings side by side in the run folder,
and no rename replaces several files at once; the journal makes the set's switch one rename.
Costs: each part is held in memory once more while it is written, and hashed (SHA-256) by
the writer and by each reader. One writer per folder is assumed (rank 0 of one run; a second
run into a used folder is refused, ``ppcls/engine/runner.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import paddle

from ppcls.arch.weights import META_KEY
from ppcls.utils.errors import MissingFileError
from ppcls.utils.io import (
    WRITE_PROBE,
    WriteError,
    ensure_writable_dir,
    fsync_dir,
    is_write_failure,
    write_error,
)

logger = logging.getLogger(__name__)

PARAMS, OPT, EMA, STATES = ".pdparams", ".pdopt", "_ema.pdparams", ".pdstates"
PARTS = (PARAMS, OPT, EMA, STATES)  # the order of the renames in step 4
EXTS = (PARAMS, OPT, STATES)  # the suffixes a user may give with a checkpoint path
MANIFEST_KEY = "checkpoint_parts"
JOURNAL = ".commit"
_TEMP_RE = re.compile(r"^\.(?P<name>.+?)(?P<part>_ema\.pdparams|\.pdparams|\.pdopt|\.pdstates|\.commit)"
                      r"\.(?P<token>[0-9a-f]{16})\.tmp$")
READ_ATTEMPTS = 10
READ_PAUSE = 0.1  # seconds between attempts while a save renames its parts

# Tests set this to a function called with the name of each step of a save ("write .pdopt",
# "commit", "rename .pdparams", ...) to kill the process or fail the step right there.
fault_hook: Callable[[str], None] | None = None


class CheckpointError(MissingFileError):
    """No complete checkpoint at the path given; the message names complete ones nearby."""


class CheckpointWriteError(WriteError):
    """A checkpoint could not be written; its temporary files are removed, the previous set kept."""


@dataclass
class Checkpoint:
    """A complete checkpoint set as read from disk."""

    prefix: str
    weights: dict
    optimizer: dict | None
    states: dict
    ema: dict | None = None
    parts: list[str] = field(default_factory=list)
    verified: bool = False  # the set has a manifest and every part matched it


def _step(name: str) -> None:
    if fault_hook is not None:
        fault_hook(name)


def _serialise(obj: Any) -> bytes:
    buf = io.BytesIO()
    paddle.save(obj, buf)
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_new(path: str, data: bytes) -> None:
    """Write ``data`` to a file that must not exist yet, and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _journal_path(prefix: str) -> str:
    folder, name = os.path.split(prefix)
    return os.path.join(folder, f".{name}{JOURNAL}")


def _temp_path(prefix: str, part: str, token: str) -> str:
    folder, name = os.path.split(prefix)
    return os.path.join(folder, f".{name}{part}.{token}.tmp")


def save_checkpoint(
    prefix: str,
    model_state: dict,
    opt_state: dict | None = None,
    states: dict | None = None,
    ema_state: dict | None = None,
) -> None:
    """Write the set ``prefix`` by the protocol of the module docstring (the writer only)."""
    prefix = os.path.abspath(prefix)
    folder = os.path.dirname(prefix)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise write_error(e, folder, "cannot create the checkpoint folder") from None
    recover(prefix)
    if ema_state is not None and _has_manifest(prefix + "_ema"):
        # {name}_ema.pdparams is the weights file of the set {name}_ema (best_model / best_model_ema)
        raise ValueError(f"checkpoint {prefix}: its EMA part would overwrite the set {prefix}_ema")
    blobs = {PARAMS: _serialise(model_state)}
    if opt_state is not None:
        blobs[OPT] = _serialise(opt_state)
    if ema_state is not None:
        blobs[EMA] = _serialise(ema_state)
    manifest = {part: {"size": len(data), "sha256": _digest(data)} for part, data in blobs.items()}
    blobs[STATES] = _serialise({**dict(states or {}), MANIFEST_KEY: manifest})
    token = secrets.token_hex(8)
    temps = {part: _temp_path(prefix, part, token) for part in blobs}
    journal = _journal_path(prefix)
    journal_tmp = _temp_path(prefix, JOURNAL, token)
    committed = False
    try:
        for part in PARTS:  # step 2
            if part in blobs:
                _step(f"write {part}")
                _write_new(temps[part], blobs[part])
        _step("sync folder")
        fsync_dir(folder)
        record = {
            "format": 1,
            "parts": {part: {"file": os.path.basename(temps[part]), "size": len(data), "sha256": _digest(data)}
                      for part, data in blobs.items()},
            "drop": _stale_parts(prefix, blobs),
        }
        _step("write journal")
        _write_new(journal_tmp, json.dumps(record).encode())
        _step("commit")
        os.replace(journal_tmp, journal)  # step 3: the commit point
        committed = True
        fsync_dir(folder)
        _finish(prefix, record)  # step 4
    except BaseException as e:  # noqa: B036 - a second Ctrl-C must not leave temporary files either
        if not committed:
            for path in (*temps.values(), journal_tmp):
                with contextlib.suppress(OSError):
                    os.remove(path)
            with contextlib.suppress(OSError):
                fsync_dir(folder)
        if isinstance(e, OSError) and e.errno is not None:
            kept = ("its temporary files were removed and the previous set, if any, is unchanged" if not committed
                    else "the new set is complete and its renames are finished at the next start")
            cause = write_error(OSError(e.errno, e.strerror), prefix, "cannot write checkpoint")  # not the temp's name
            raise CheckpointWriteError(f"{cause}; {kept}") from None
        raise


def _manifest(prefix: str) -> Mapping:
    """The manifest of the set now at ``prefix`` ({} for none, or one without a manifest)."""
    try:
        manifest = _load_bytes(_read(prefix + STATES) or b"").get(MANIFEST_KEY)
    except Exception:  # no set, or a foreign or damaged .pdstates
        return {}
    return manifest if isinstance(manifest, Mapping) else {}


def _has_manifest(prefix: str) -> bool:
    return bool(_manifest(prefix))


def _stale_parts(prefix: str, blobs: Mapping) -> list[str]:
    """Parts of the set now at ``prefix`` that the new set lacks (removed in step 4).

    An EMA file goes only when the set's own manifest lists it: ``best_model_ema.pdparams`` is
    also the weights of the set ``best_model_ema``, which a ``best_model`` save must not touch.
    """
    stale = [OPT] if OPT not in blobs else []
    if EMA not in blobs and EMA in _manifest(prefix):
        stale.append(EMA)
    return stale


def _finish(prefix: str, record: Mapping) -> None:
    """Step 4 of a committed save: rename the parts, drop parts the set lacks, remove the journal."""
    folder = os.path.dirname(prefix)
    for part in PARTS:
        info = record["parts"].get(part)
        if info is None:
            continue
        tmp = os.path.join(folder, info["file"])
        _step(f"rename {part}")
        if os.path.exists(tmp):
            os.replace(tmp, prefix + part)
    for part in record.get("drop", []):
        with contextlib.suppress(FileNotFoundError):
            os.remove(prefix + part)
    fsync_dir(folder)
    _step("remove journal")
    os.remove(_journal_path(prefix))
    fsync_dir(folder)


def _read_journal(prefix: str) -> dict | None:
    try:
        with open(_journal_path(prefix), "rb") as f:
            record = json.loads(f.read().decode())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError, UnicodeDecodeError):
        return {}  # unreadable: treated as no complete set
    return record if isinstance(record, dict) and isinstance(record.get("parts"), dict) else {}


def recover(prefix: str) -> None:
    """Finish a committed save of ``prefix`` (the writer only; readers never call this)."""
    prefix = os.path.abspath(prefix)
    record = _read_journal(prefix)
    if record is None:
        return
    folder = os.path.dirname(prefix)
    journal = _journal_path(prefix)
    if not record:
        logger.warning("removed the unreadable save journal %s", journal)
        os.remove(journal)
        return
    for part, info in record["parts"].items():
        tmp = os.path.join(folder, info["file"])
        if _matches(_read(tmp), info):
            continue
        if not _matches(_read(prefix + part), info):
            # cannot happen with this protocol unless the disk lost data: keep everything for a person
            raise CheckpointError(
                f"the interrupted save of {prefix} cannot be completed: neither {tmp} nor {prefix}{part} holds "
                f"the {info.get('size')} bytes its journal {journal} records. Move the journal aside to keep "
                "the files as they are"
            )
    _finish(prefix, record)
    logger.warning("completed the interrupted save of checkpoint %s", prefix)


def recover_folder(folder: str) -> None:
    """The writer's start-up: finish committed saves, remove temporary files of killed ones."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in sorted(names):
        if name.startswith(".") and name.endswith(JOURNAL) and len(name) > len(JOURNAL) + 1:
            recover(os.path.join(folder, name[1: -len(JOURNAL)]))
    for name in sorted(os.listdir(folder)):
        if (_TEMP_RE.match(name) or (name.endswith(".tmp") and strip_suffix(name[:-4]) != name[:-4])
                or (name.startswith(WRITE_PROBE) and name.endswith(".tmp"))):
            # a save killed before its commit (or a temporary of the earlier, renaming-only protocol,
            # or the probe file of a start-up killed at that instant)
            os.remove(os.path.join(folder, name))
            logger.warning("removed %s, a partial file of an interrupted save", os.path.join(folder, name))


def strip_suffix(path: str) -> str:
    """``out/latest`` for ``out/latest.pdparams`` (``.pdopt``, ``.pdstates``); ``_ema`` stays."""
    for ext in EXTS:
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _matches(data: bytes | None, info: Mapping) -> bool:
    return data is not None and len(data) == info.get("size") and _digest(data) == info.get("sha256")


def _load_bytes(data: bytes) -> Any:
    return paddle.load(io.BytesIO(data))


def _collect(listing: Mapping[str, Any], paths: Callable[[str, Mapping], tuple[str, ...]]) -> dict[str, bytes] | None:
    """Each listed part's bytes from the first of its ``paths`` whose size and checksum match, or None."""
    out = {}
    for part, info in listing.items():
        data = next((d for d in (_read(p) for p in paths(part, info)) if _matches(d, info)), None)
        if data is None:
            return None
        out[part] = data
    return out


def _read_set(prefix: str) -> tuple[dict[str, bytes] | None, str]:
    """The bytes of every part of the newest complete set at ``prefix``, or None and why not.

    Newest first: a committed save whose renames are pending or under way (its journal names
    whole files, temporary or already renamed); else the files in place, checked against the
    manifest of their ``.pdstates``; else, without any manifest, the files as they are.
    """
    record = _read_journal(prefix)
    if record:
        folder = os.path.dirname(prefix)
        parts = _collect(record["parts"], lambda part, info: (os.path.join(folder, info["file"]), prefix + part))
        if parts is not None:
            return parts, ""
    states_data = _read(prefix + STATES)
    manifest = None
    if states_data is not None:
        try:
            manifest = _load_bytes(states_data).get(MANIFEST_KEY)
        except Exception:  # a damaged file of a set written without this protocol
            manifest = None
        if isinstance(manifest, Mapping):
            parts = _collect(manifest, lambda part, info: (prefix + part,))
            if parts is not None:
                return {STATES: states_data, **parts}, ""
    if manifest is None and record is None:
        params = _read(prefix + PARAMS)
        if params is not None:  # no manifest: PaddleClas's or an older set, read as it is
            parts = {PARAMS: params}
            for part in (OPT, STATES):
                data = _read(prefix + part)
                if data is not None:
                    parts[part] = data
            return parts, ""
        return None, "missing"
    return None, "incomplete"


def load_checkpoint(path: str) -> Checkpoint:
    """The complete set at ``path`` (any suffix); never changes the folder it reads.

    ``.ema`` holds the EMA weights saved with the set (None when it has none).
    """
    prefix = os.path.abspath(strip_suffix(str(path)))
    why = "missing"
    for _ in range(READ_ATTEMPTS):
        parts, why = _read_set(prefix)
        if parts is not None:
            break
        if why == "missing" and not os.path.exists(_journal_path(prefix)):
            break
        time.sleep(READ_PAUSE)
    else:
        parts = None
    if parts is None:
        raise CheckpointError(_not_found_message(prefix, why))
    loaded = {}
    for part, data in parts.items():
        try:
            loaded[part] = _load_bytes(data)
        except Exception as e:  # only a set without a manifest can hold a damaged file
            raise CheckpointError(f"Global.checkpoints: cannot read {prefix}{part} ({type(e).__name__}: "
                                  f"{str(e)[:200]}); is it a checkpoint file?") from None
    weights = dict(loaded[PARAMS])
    weights.pop(META_KEY, None)
    states = dict(loaded.get(STATES) or {})
    verified = isinstance(states.pop(MANIFEST_KEY, None), Mapping)
    return Checkpoint(prefix=prefix, weights=weights, optimizer=loaded.get(OPT), states=states,
                      ema=loaded.get(EMA), parts=sorted(parts), verified=verified)


def complete_checkpoints(folder: str, limit: int = 5, resumable: bool = False) -> list[tuple[str, int | None]]:
    """(name, epoch) of up to ``limit`` complete sets in ``folder``, latest epoch first.

    ``resumable``: only sets with an optimizer state (not ``best_model_ema``)."""
    try:
        names = sorted({n[: -len(STATES)] for n in os.listdir(folder) if n.endswith(STATES) and not n.startswith(".")})
    except OSError:
        return []
    found = []
    for name in names:
        parts, _ = _read_set(os.path.join(folder, name))
        if parts is None or PARAMS not in parts or (resumable and OPT not in parts):
            continue
        try:
            epoch = int(_load_bytes(parts[STATES]).get("epoch")) if STATES in parts else None
        except Exception:  # states of a foreign set: show it without its epoch
            epoch = None
        found.append((name, epoch))
    found.sort(key=lambda item: (-(item[1] if item[1] is not None else -1), item[0]))
    return found[:limit]


def _not_found_message(prefix: str, why: str) -> str:
    folder = os.path.dirname(prefix)
    if why == "missing":
        head = f"Global.checkpoints: no checkpoint at {prefix} (expected {prefix}.pdparams, .pdopt, .pdstates)"
    else:
        head = (f"Global.checkpoints: the checkpoint at {prefix} is incomplete (a save of it was interrupted "
                "and the run has not been restarted since, or its files were changed)")
    others = [(n, e) for n, e in complete_checkpoints(folder, resumable=True) if os.path.join(folder, n) != prefix]
    if others:
        shown = ", ".join(f"{n} (epoch {e})" if e is not None else n for n, e in others)
        head += (f". Complete checkpoints in {folder}: {shown}; resume from one with "
                 f"-o Global.checkpoints={os.path.join(folder, others[0][0])}")
    elif os.path.isdir(folder):
        head += f". There is no complete checkpoint in {folder}"
    return head


class Checkpointer:
    """Names and writes a run's checkpoints under ``folder`` (rank 0 only): the one writer.

    On creation it finishes or discards the saves an earlier process of this run left
    interrupted; nothing else ever changes the folder's checkpoint files.
    """

    def __init__(self, folder: str, enabled: bool = True) -> None:
        self.folder = folder
        self.enabled = enabled
        if enabled:
            ensure_writable_dir(folder, "Global.output_dir")
            try:
                recover_folder(folder)
            except OSError as e:
                if is_write_failure(e):
                    raise write_error(e, folder, "cannot tidy the checkpoint folder") from None
                raise

    def save(self, name: str, model: paddle.nn.Layer, optimizer: Any | None, states: dict,
             ema_state: dict | None = None) -> str:
        prefix = os.path.join(self.folder, name)
        if self.enabled:
            save_checkpoint(prefix, weights_state(model), optimizer.state_dict() if optimizer else None, states,
                            ema_state)
            logger.info("saved checkpoint %s", prefix)
        return prefix


def weights_state(model: paddle.nn.Layer) -> dict:
    """``model``'s state dict, plus what rebuilding and naming its outputs needs (if known).

    Fine-tuning from, say, torchvision's SqueezeNet builds the model with ``ceil_mode``; the
    option travels in the checkpoint so that evaluating or exporting it rebuilds the same
    network (see :mod:`ppcls.arch.weights.loader`). The training data's class names
    (``model.class_names``) travel too, so ``tools/infer.py`` and the export name the classes
    without the data at hand.
    """
    state = model.state_dict()
    options = getattr(model, "publisher_options", None)
    names = getattr(model, "class_names", None)
    if options or names:
        meta: dict = {"family": type(model).__name__, "arch_options": dict(options or {})}
        if names:
            meta.update(class_num=len(names), class_names=list(names))
        state = {**state, META_KEY: meta}
    return state


__all__ = [
    "Checkpoint", "CheckpointError", "CheckpointWriteError", "Checkpointer", "complete_checkpoints",
    "load_checkpoint", "recover", "recover_folder", "save_checkpoint", "strip_suffix", "weights_state",
]
