"""Run one stage of a round at most once per (config, inputs): the DAG's skip/resume rule.

Each stage of each round has a manifest under ``WORKDIR/manifests/<key>.json`` recording the hash
of the stage's config, the hashes of its inputs (upstream outputs, data files) and the hash of its
output. On a rerun:

* manifest present and matching  -> the stage is skipped (done);
* no manifest, but an *attempt* record with the same config and inputs -> the stage is called
  again with its partial work in place (sampling shards, trainer checkpoints): it resumes;
* anything else -> the stage's output is wiped and the stage runs from scratch (stale).

Because a stage's inputs include its upstream stages' output hashes, changing one stage's
settings re-runs that stage and, through the changed hashes, everything downstream of it.
A failure is written to ``WORKDIR/status/<key>.json`` for ``herd status``; no manifest is written,
so nothing failed ever looks finished.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from herd.core.artifacts import Manifest, atomic_write_json, content_hash, hash_config

log = logging.getLogger("herd.loop")

#: Stage-config keys holding paths the runner fills in; their content is hashed as inputs.
PATH_KEYS = frozenset({"model", "output_dir", "data", "reference_path", "input", "output", "previous_metrics"})


def strip_paths(config: Any) -> Any:
    """``config`` without runner-filled path keys (recursively through a top-level ``stage`` key)."""
    if not isinstance(config, dict):
        return config
    out = {k: v for k, v in config.items() if k not in PATH_KEYS}
    if isinstance(out.get("stage"), dict):
        out["stage"] = strip_paths(out["stage"])
    return out


@dataclass
class StageState:
    key: str
    state: str
    """'done', 'stale', 'pending', 'failed', 'running', 'interrupted'."""
    manifest: Manifest | None = None
    error: str | None = None


class StageRunner:
    """Runs stages under a workdir with manifests, attempts and failure records."""

    def __init__(
        self,
        workdir: Path,
        on_done: Callable[[str, Manifest, bool], None] | None = None,
        dry_run: bool = False,
    ):
        self.workdir = Path(workdir)
        self.manifests = self.workdir / "manifests"
        self.status_dir = self.workdir / "status"
        self.on_done = on_done
        self.dry_run = dry_run
        """Plan only (``herd status --config``): record each stage's state, run nothing."""
        self.bar = None
        """A tqdm bar over the run's stages (set by the round runner); the stages draw their own."""
        self.plan: list[StageState] = []
        self._dirty = False

    def manifest_path(self, key: str) -> Path:
        return self.manifests / f"{key}.json"

    def read_manifest(self, key: str) -> Manifest | None:
        try:
            return Manifest(**json.loads(self.manifest_path(key).read_text(encoding="utf-8")))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    def run(
        self,
        key: str,
        output: Path,
        config: Any,
        inputs: dict[str, str],
        fn: Callable[[], dict[str, Any] | None],
    ) -> Manifest:
        """Run ``fn`` (which writes ``output``) unless a matching manifest says it is done.

        ``config`` is hashed without its path-valued keys (model, data, output dirs): what those
        point at is covered by ``inputs``' content hashes, so a moved workdir stays valid.
        """
        config_hash = hash_config(strip_paths(config))
        done = self.read_manifest(key)
        if self.dry_run:
            return self._plan(key, output, config_hash, inputs, done)
        if self.bar is not None:
            self.bar.set_description(key)
        if done is not None and done.matches(config_hash, inputs) and output.exists():
            if self.on_done:
                self.on_done(key, done, True)
            self._advance()
            return done
        attempt_file = self.manifests / f"{key}.attempt.json"
        attempt = {"config_hash": config_hash, "inputs": inputs}
        previous = json.loads(attempt_file.read_text()) if attempt_file.exists() else None
        self.manifest_path(key).unlink(missing_ok=True)
        if previous != attempt:
            # Another config or other inputs: partial work belongs to a different run.
            if output.is_dir():
                shutil.rmtree(output)
            elif output.exists():
                output.unlink()
            # ...including the stages' work areas beside it (``.dpo.work``, ``sft.checkpoints``).
            siblings = list(output.parent.glob(f".{output.name}.*")) + list(output.parent.glob(f"{output.name}.*"))
            for sibling in siblings:
                shutil.rmtree(sibling, ignore_errors=True) if sibling.is_dir() else sibling.unlink()
            atomic_write_json(attempt_file, attempt)
        status_file = self.status_dir / f"{key}.json"
        atomic_write_json(status_file, {"state": "running", "started": time.time(), "pid": os.getpid()})
        start = time.time()
        try:
            metrics = fn() or {}
        except BaseException as e:
            atomic_write_json(
                status_file,
                {"state": "failed", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()},
            )
            raise
        if not output.exists():
            raise RuntimeError(f"stage {key} finished without writing {output}")
        manifest = Manifest(
            stage=key,
            config_hash=config_hash,
            inputs=inputs,
            output_hash=content_hash(output),
            metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool)) or v is None},
            extra={"output": str(output), "seconds": round(time.time() - start, 2)},
        )
        atomic_write_json(self.manifest_path(key), asdict(manifest))
        status_file.unlink(missing_ok=True)
        attempt_file.unlink(missing_ok=True)
        if self.on_done:
            self.on_done(key, manifest, False)
        self._advance()
        return manifest

    def _advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def _plan(self, key: str, output: Path, config_hash: str, inputs: dict[str, str], done: Manifest | None) -> Manifest:
        """Dry run: once one stage would run, every later stage would run too (its inputs change)."""
        current = self.state(key)
        if current.state in ("failed", "interrupted", "running"):
            self._dirty = True
            self.plan.append(current)
        elif done is None:
            self._dirty = True
            self.plan.append(StageState(key, "pending"))
        elif self._dirty or not done.matches(config_hash, inputs) or not output.exists():
            self._dirty = True
            self.plan.append(StageState(key, "stale", done))
        else:
            self.plan.append(StageState(key, "done", done))
        if done is None:
            # Later stages need something to hash; planning continues on placeholders.
            done = Manifest(stage=key, config_hash="", output_hash="missing")
        return done

    def state(self, key: str, config: Any | None = None, inputs: dict[str, str] | None = None) -> StageState:
        """What ``herd status`` shows for one stage."""
        status_file = self.status_dir / f"{key}.json"
        if status_file.exists():
            info = json.loads(status_file.read_text())
            if info.get("state") == "failed":
                return StageState(key, "failed", error=info.get("error"))
            if info.get("state") == "running" and not _alive(info.get("pid")):
                return StageState(key, "interrupted", error="the process running it is gone; rerun to resume")
        manifest = self.read_manifest(key)
        if manifest is None:
            return StageState(key, "running" if status_file.exists() else "pending")
        if config is not None and inputs is not None and not manifest.matches(hash_config(strip_paths(config)), inputs):
            return StageState(key, "stale", manifest)
        return StageState(key, "done", manifest)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
