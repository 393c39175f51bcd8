"""Atomic writes, content hashes and manifests: the resume machinery.

Every arrow of a round is a file or directory on disk. A reader must never see a half-written one,
and a rerun must be able to tell "finished with this config and these inputs" from "stale" or
"interrupted". So:

* files are written to a temporary sibling, fsynced, then renamed (rename is atomic on POSIX);
* directories are built under a temporary sibling and renamed into place as a whole;
* a stage is *finished* only when its ``manifest.json`` exists (it is written last), and the
  manifest records the config hash, the input hashes and the output hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

MANIFEST = "manifest.json"


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` so readers see either the old file or the whole new one."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts are ordinary files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(p.parent)
    return p


def atomic_write_text(path: Path | str, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_jsonl(path: Path | str, rows: list[dict]) -> Path:
    return atomic_write_text(
        path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
    )


@contextlib.contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` as a whole when the block succeeds.

    On an exception the temporary directory is removed and ``path`` is left as it was.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent))
    tmp.chmod(0o777 & ~_UMASK)
    try:
        yield tmp
        if p.exists():
            old = p.with_name(f".{p.name}.old-{os.getpid()}")
            os.replace(p, old)
            os.replace(tmp, p)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, p)
        _fsync_dir(p.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temps(directory: Path | str) -> int:
    """Delete leftovers of interrupted atomic writes (``.name.*.tmp``) in ``directory``."""
    d = Path(directory)
    if not d.is_dir():
        return 0
    n = 0
    for child in d.iterdir():
        if child.name.startswith(".") and (child.name.endswith(".tmp") or ".old-" in child.name):
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
            n += 1
    return n


_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def last_complete_checkpoint(directory: Path | str) -> Path | None:
    """Newest ``checkpoint-N`` under ``directory`` whose ``trainer_state.json`` exists.

    transformers writes ``trainer_state.json`` last, so a checkpoint cut off by a kill has none
    and is skipped; resuming from it would fail ("Can't find a valid checkpoint").
    """
    d = Path(directory)
    if not d.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _CHECKPOINT.match(p.name)) and p.is_dir()]
    for _, path in sorted(found, reverse=True):
        if (path / "trainer_state.json").exists():
            return path
    return None


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_path(path: Path | str, exclude: tuple[str, ...] = (MANIFEST,)) -> str:
    """Content hash of a file, or of a directory tree (relative names + file hashes, sorted).

    Hidden files (temporaries) and the manifest itself are excluded, so hashing an artifact
    gives the same answer before and after its manifest is written.
    """
    p = Path(path)
    if p.is_file():
        return hash_file(p)
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: cannot hash, no such file or directory")
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        rel = f.relative_to(p).as_posix()
        if any(part.startswith(".") for part in f.relative_to(p).parts) or rel in exclude:
            continue
        h.update(rel.encode() + b"\0" + hash_file(f).encode() + b"\n")
    return h.hexdigest()


#: Files whose bytes define a model or dataset artifact. Logs, timings, trainer state and configs
#: written alongside are left out, so a resumed stage and an uninterrupted one — or two runs on
#: different days — hash the same when they produced the same weights and data.
CONTENT_SUFFIXES = (".safetensors", ".jsonl")
SKIP_DIR_PREFIXES = ("checkpoint", ".", "work", "_work")


def content_hash(path: Path | str) -> str:
    """Hash of the content files (weights, data rows) of an artifact directory, or of one file."""
    p = Path(path)
    if p.is_file():
        return hash_file(p)
    h = hashlib.sha256()
    for f in sorted(p.rglob("*")):
        rel = f.relative_to(p)
        if not f.is_file() or any(part.startswith(SKIP_DIR_PREFIXES) for part in rel.parts[:-1]):
            continue
        if f.name.startswith(".") or f.suffix not in CONTENT_SUFFIXES:
            continue
        h.update(rel.as_posix().encode() + b"\0" + hash_file(f).encode() + b"\n")
    return h.hexdigest()


def hash_config(config: Any) -> str:
    """Stable hash of plain config data (dicts/lists/scalars), independent of key order."""
    return hash_bytes(json.dumps(config, sort_keys=True, default=str).encode())


@dataclass
class Manifest:
    """What made an artifact: stage, config hash, inputs (name -> content hash), output hash."""

    stage: str
    config_hash: str
    inputs: dict[str, str] = field(default_factory=dict)
    output_hash: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    def matches(self, config_hash: str, inputs: dict[str, str]) -> bool:
        return self.config_hash == config_hash and self.inputs == inputs


def write_manifest(artifact_dir: Path | str, manifest: Manifest) -> Path:
    """Seal an artifact: hash its content and write the manifest (last, atomically)."""
    d = Path(artifact_dir)
    manifest.output_hash = hash_path(d)
    return atomic_write_json(d / MANIFEST, asdict(manifest))


def read_manifest(artifact_dir: Path | str) -> Manifest | None:
    """The artifact's manifest, or None when it is missing or unreadable (= not finished)."""
    p = Path(artifact_dir) / MANIFEST
    try:
        return Manifest(**json.loads(p.read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None


def is_complete(artifact_dir: Path | str, config_hash: str, inputs: dict[str, str]) -> bool:
    """True when the artifact was finished with this exact config and these inputs."""
    m = read_manifest(artifact_dir)
    return m is not None and m.matches(config_hash, inputs)
