"""Bad input stops the stage before anything is generated, names the file and row, and leaves no
output directory behind."""

from __future__ import annotations

import pytest

from herd.core.verifiers import NumberMatchVerifier
from herd.rejection_sampling import PromptError, PromptSetConfig, SelectionConfig, load_prompts, run_sampling
from tests.rejection_sampling.conftest import GSM8K, make_config, write_rows


def _run(tiny_kit, tmp_path, rows_or_text, scorers=None, **kw):
    path = tmp_path / "prompts.jsonl"
    if isinstance(rows_or_text, str):
        path.write_text(rows_or_text, encoding="utf-8")
    else:
        write_rows(path, rows_or_text)
    kw.setdefault("selection", SelectionConfig())
    cfg = make_config(tiny_kit, tmp_path / "out", [PromptSetConfig(path=path)], **kw)
    return path, cfg, lambda: run_sampling(cfg, scorers or {"verifier": NumberMatchVerifier()})


GOOD = {"id": "a", "prompt": "What is 1 + 1?", "reference": "2"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "prompt file is empty"),
        ("\n\n", "prompt file is empty"),
        ([GOOD, {"prompt": "no id", "reference": "1"}], "row 2: missing column 'id'"),
        ([GOOD, {"id": "b", "text": "hi"}], "row 2: missing column 'messages' or 'prompt'"),
        ([GOOD, {"id": "b", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}],
         "row 2: the last message must be a user turn"),
        ([GOOD, {"id": "b", "messages": [{"role": "robot", "content": "hi"}]}], "row 2: 'messages': message 0 has unknown role"),
        ([GOOD, {"id": "a", "prompt": "again", "reference": "3"}], "row 2: duplicate prompt id 'a' \\(first at .*row 1\\)"),
        ('{"id": "a", "prompt": "x", "reference": "1"}\n{"id": "b", "prompt": \n', "row 2: not valid JSON"),
        ([GOOD, {"id": "b", "prompt": "no reference"}], "row 2 \\(id 'b'\\): scorer 'verifier' needs a 'reference'"),
    ],
)
def test_bad_prompt_rows_name_file_and_row_and_write_nothing(tiny_kit, tmp_path, content, message):
    path, cfg, run = _run(tiny_kit, tmp_path, content)
    with pytest.raises(ValueError, match=f"{path}: {message}"):
        run()
    assert not cfg.output_dir.exists()


def test_prompt_longer_than_context_is_rejected_up_front(tiny_kit, tmp_path):
    long_prompt = {"id": "long", "prompt": "word " * 1100, "reference": "1"}
    path, cfg, run = _run(tiny_kit, tmp_path, [GOOD, long_prompt])
    with pytest.raises(PromptError, match=rf"{path}: row 2 \(id 'long'\): prompt is \d+ tokens; with max_new_tokens 24 it exceeds the model context of 1024"):
        run()
    assert not cfg.output_dir.exists()


def test_missing_prompt_file_and_unknown_scorer_names(tiny_kit, tmp_path):
    scorers = {"verifier": NumberMatchVerifier()}
    missing = [PromptSetConfig(path=tmp_path / "nope.jsonl")]
    cfg = make_config(tiny_kit, tmp_path / "out", missing, selection=SelectionConfig())
    with pytest.raises(PromptError, match="nope.jsonl: prompt file not found"):
        run_sampling(cfg, scorers)
    path = write_rows(tmp_path / "p.jsonl", [GOOD])
    typo = [PromptSetConfig(path=path, scorers=["verfier"])]
    cfg = make_config(tiny_kit, tmp_path / "out", typo, selection=SelectionConfig())
    with pytest.raises(ValueError, match="prompt set 'p': unknown scorer 'verfier'"):
        run_sampling(cfg, scorers)
    assert not cfg.output_dir.exists()


def test_system_prompt_precedence(tmp_path):
    rows = [
        {"id": "plain", "prompt": "hi"},
        {"id": "own", "prompt": "hi", "system_prompt": "Row system."},
        {"id": "msg", "messages": [{"role": "system", "content": "Msg system."}, {"role": "user", "content": "hi"}]},
    ]
    path = write_rows(tmp_path / "p.jsonl", rows)
    prompts = load_prompts([PromptSetConfig(path=path, system_prompt="Set system.")])
    assert [p.messages[0]["content"] for p in prompts] == ["Set system.", "Row system.", "Msg system."]
    assert all(p.messages[-1] == {"role": "user", "content": "hi"} for p in prompts)
    no_system = load_prompts([PromptSetConfig(path=path, name="x")])
    assert no_system[0].messages == [{"role": "user", "content": "hi"}] and no_system[0].prompt_set == "x"


def test_gsm8k_set_reads_real_rows_with_references():
    prompts = load_prompts([PromptSetConfig(path=GSM8K, format="gsm8k", limit=3, system_prompt="Think step by step.")])
    assert [p.id for p in prompts] == ["gsm8k-1", "gsm8k-2", "gsm8k-3"]
    assert [p.reference for p in prompts] == ["18", "3", "70000"]
    assert prompts[0].messages[0] == {"role": "system", "content": "Think step by step."}
    assert prompts[0].messages[1]["content"].startswith("Janet")
