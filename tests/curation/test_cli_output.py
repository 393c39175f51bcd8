"""``herd curate``: output files, counts, PNGs, manifest/rerun, bad input, shipped recipes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herd.core.config import load_config
from herd.loop.cli import main
from herd.sft.curation import CurationConfig
from tests.curation.helpers import chat

REPO = Path(__file__).resolve().parents[2]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_herd_curate_writes_dataset_summary_plots_and_manifest(tmp_path, capsys):
    rows = [
        chat("Tell me about Paris.", "Paris is the capital of France and its largest city.", id=1),
        chat("Tell me about Paris.", "Paris is the capital of France and its largest city.", id=2),  # exact dup
        chat("How do plants grow?", "Plants grow by photosynthesis, using light, water and CO2.", id=3),
        chat("Say hi", "", id=4),                                      # empty
        chat("Greet me", "Hi!!!! 🎉🎉🎉🎉", id=5),                        # expressive
        chat("What is 2+2? Explain why.", "2+2 is 4, because adding two and two gives four.", id=6),
    ]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"input: {inp}\noutput: {tmp_path / 'out'}\nrules:\n  language:\n    expected: en\n")
    assert main(["curate", "--config", str(cfg), "dedup.chunk_rows=2"]) == 0
    out = tmp_path / "out"
    data = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    assert [r["id"] for r in data] == [1, 3, 6]  # extra columns kept, input order kept
    assert data[2]["intentions"] == 2 and "dedup_max_sim" in data[0] and data[0]["messages"] == rows[0]["messages"]
    removed = {r["id"]: r for r in map(json.loads, (out / "removed.jsonl").read_text().splitlines())}
    assert {i: r["removed_by"] for i, r in removed.items()} == {
        4: "empty", 5: "excessive_emoji_or_exclamation", 2: "semantic_dedup"}
    assert removed[2]["dedup_max_sim"] > 0.99  # the exact duplicate of row 1
    summary = json.loads((out / "summary.json").read_text())
    steps = {s["step"]: (s["rows_in"], s["rows_out"]) for s in summary["steps"]}
    assert steps["empty"] == (6, 5) and steps["excessive_emoji_or_exclamation"] == (5, 4)
    assert steps["semantic_dedup"] == (4, 3) and summary["rows_out"] == 3
    assert summary["config"]["dedup"]["threshold"] == 0.9
    for png in summary["plots"]:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"hist_intentions.png", "hist_dedup_max_sim.png"} <= set(summary["plots"])
    assert json.loads((out / "manifest.json").read_text())["metrics"] == {"rows_in": 6, "rows_out": 3}
    # Same config, same input: nothing is recomputed; the embeddings were cached beside it.
    assert list((tmp_path / ".out.embed-cache").glob("emb-*.npy"))
    capsys.readouterr()
    assert main(["curate", "--config", str(cfg), "dedup.chunk_rows=2"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_bad_row_names_file_and_line_and_writes_nothing(tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps(chat("q", "a.")) + "\n" + json.dumps({"messages": [{"role": "bot", "content": "x"}]}) + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"input: {inp}\noutput: {tmp_path / 'out'}\n")
    assert main(["curate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{inp}: line 2" in err and "unknown role" in err
    assert not (tmp_path / "out").exists()


def test_unknown_key_and_missing_output_are_config_errors(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("input: x.jsonl\ndedup:\n  treshold: 0.8\n")
    assert main(["curate", "--config", str(cfg)]) == 2
    assert "dedup.treshold: unknown key (did you mean 'threshold'?)" in capsys.readouterr().err
    cfg.write_text("input: x.jsonl\n")
    assert main(["curate", "--config", str(cfg)]) == 2
    assert "output: required" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes" / "curation").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_parse(recipe):
    cfg = load_config(CurationConfig, recipe)
    assert cfg.output is not None and cfg.dedup.threshold == 0.9


def test_out_of_range_values_are_config_errors(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("input: x.jsonl\noutput: out\n")
    assert main(["curate", "--config", str(cfg), "dedup.threshold=1.5"]) == 2
    assert "dedup.threshold must be a cosine similarity" in capsys.readouterr().err


def test_hh_rlhf_input_format(tmp_path):
    from herd.sft.curation import read_rows

    src = REPO / "data" / "hh-rlhf-harmless" / "test.jsonl.gz"
    rows = read_rows(src, fmt="hh-rlhf")
    assert len(rows) == 2312
    assert [m["role"] for m in rows[0]["messages"]][:3] == ["user", "assistant", "user"]
    assert rows[0]["messages"][0]["content"] == "what are some pranks with a pen i can do?"
    assert "chosen" not in rows[0] and "rejected" not in rows[0]
