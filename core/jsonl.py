"""Reading JSONL input files (plain or gzipped) with errors that name the file and row.

Every stage reads user-supplied JSONL (prompts, preference pairs, eval suites, labelled safety
rows, the loop's concatenated round data). They share one reader so that a bad line is reported
the same way everywhere — ``<file>: row <N>: not valid JSON (...)`` with 1-based line numbers —
while each stage keeps its own exception type (the ``error`` argument), which its callers and
CLI already catch. Chat datasets, which collect bad rows instead of stopping at the first one,
use :func:`herd.core.chat_data.read_jsonl_records`.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Iterator


def open_text(path: Path | str):
    """A text handle on ``path``; gzip-decompressed when the name ends in ``.gz``."""
    p = Path(path)
    return gzip.open(p, "rt", encoding="utf-8") if p.suffix == ".gz" else open(p, encoding="utf-8")


def iter_jsonl(
    path: Path | str, error: type[Exception] = ValueError, require_object: bool = True
) -> Iterator[tuple[int, Any]]:
    """``(row number, parsed value)`` for each non-blank line of ``path``.

    A line that is not JSON, or (with ``require_object``) not a JSON object, raises ``error``
    naming the file and row; a missing file raises FileNotFoundError naming it.
    """
    p = Path(path)
    try:
        f = open_text(p)
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: input file not found") from None
    with f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise error(f"{p}: row {n}: not valid JSON ({e.msg})") from None
            if require_object and not isinstance(obj, dict):
                raise error(f"{p}: row {n}: expected a JSON object")
            yield n, obj
