"""Atomic writes leave either the old or the whole new content; manifests seal artifacts."""

from __future__ import annotations

import os

import pytest

from herd.core.artifacts import (
    Manifest,
    atomic_dir,
    atomic_write_text,
    hash_path,
    is_complete,
    read_manifest,
    remove_stale_temps,
    write_manifest,
)


def test_atomic_write_replaces_whole_file(tmp_path):
    p = atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]  # no temporaries left
    assert p.stat().st_mode & 0o044 == 0o044 or os.umask(os.umask(0)) & 0o044  # readable by others


def test_failed_atomic_dir_leaves_old_content(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as d:
        (d / "x").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as d:
            (d / "x").write_text("half")
            raise RuntimeError("killed mid-write")
    assert (target / "x").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_hash_path_is_content_based_and_ignores_manifest(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "f.txt").write_text("same")
    assert hash_path(a) == hash_path(b)
    write_manifest(a, Manifest(stage="s", config_hash="c"))
    assert hash_path(a) == hash_path(b)
    (b / "sub" / "f.txt").write_text("different")
    assert hash_path(a) != hash_path(b)


def test_manifest_marks_completion(tmp_path):
    d = tmp_path / "art"
    d.mkdir()
    (d / "data.jsonl").write_text("{}\n")
    assert not is_complete(d, "c1", {"in": "h"})
    write_manifest(d, Manifest(stage="sample", config_hash="c1", inputs={"in": "h"}))
    assert is_complete(d, "c1", {"in": "h"})
    assert not is_complete(d, "c2", {"in": "h"})  # config changed
    assert not is_complete(d, "c1", {"in": "other"})  # an input changed
    assert read_manifest(d).output_hash == hash_path(d)
    (d / "manifest.json").write_text("{trunc")
    assert read_manifest(d) is None


def test_remove_stale_temps(tmp_path):
    (tmp_path / ".x.123.tmp").write_text("partial")
    (tmp_path / "keep").write_text("k")
    assert remove_stale_temps(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]


def test_last_complete_checkpoint_skips_one_cut_off_by_a_kill(tmp_path):
    from herd.core.artifacts import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path / "none") is None
    for n, complete in ((2, True), (10, True), (12, False)):
        d = tmp_path / f"checkpoint-{n}"
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"w")
        if complete:
            (d / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path).name == "checkpoint-10"  # numeric order, 12 incomplete
