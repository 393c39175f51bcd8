"""The round runner: a round config -> per-round stage DAG -> artifacts, manifests, report.

Round 0 prepares the starting policy (build the tiny base when asked, optional warm-start SFT)
and evaluates it. Each round r then runs, in order (Llama 3 §4, Figure 7):

    reward (optional) -> sample (K per prompt, scored, guarded) -> [curate] -> sft -> dpo -> eval

``sample`` draws from the latest policy; SFT starts from the base checkpoint with all kept
samples so far (Llama 3) or from the previous policy, as configured; DPO's reference is the
round's SFT model or the previous policy. After the last round an optional control run spends the
same number of optimizer steps on plain SFT of the seed data, and the report compares all of it.
"""

from __future__ import annotations

import copy

import json
import logging
import sys

import yaml
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herd.core.artifacts import atomic_write_jsonl, atomic_write_text, content_hash, hash_path
from herd.core.config import to_dict
from herd.loop.config import RoundConfig
from herd.loop.stage_settings import build_stage_config
from herd.loop.stages import StageRunner
from herd.loop import launch as launcher

log = logging.getLogger("herd.loop")


@dataclass
class RoundOutputs:
    """Paths of what a round produced (inputs of the next round)."""

    policy: Path
    policy_hash: str
    sample_dir: Path | None = None
    eval_dir: Path | None = None
    steps: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


class RoundRunner:
    """Executes a :class:`RoundConfig` under a workdir; every stage goes through StageRunner."""

    def __init__(self, cfg: RoundConfig, workdir: Path | str, config_source: str = "", dry_run: bool = False):
        self.cfg = cfg
        self.workdir = Path(workdir).resolve()
        self.source = config_source
        self.dry_run = dry_run
        self.stages = StageRunner(self.workdir, on_done=self._summarize, dry_run=dry_run)
        self.history: list[dict] = []
        self._safety = None
        self._reward_models: dict[int, Path] = {}
        self.skipped: list[dict] = []
        """Training stages skipped for want of data (round, stage, why)."""

    # ---- bookkeeping -------------------------------------------------------------------------
    def _summarize(self, key: str, manifest, skipped: bool) -> None:
        shown = {k: v for k, v in manifest.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        text = ", ".join(f"{k}={v:.4g}" for k, v in list(shown.items())[:6])
        verb = "up to date, skipped" if skipped else f"done in {manifest.extra.get('seconds', 0):.0f}s"
        log.info("%-22s %s%s", key, verb, f" ({text})" if text else "")

    def _stage_cfg(self, stage: str, settings: dict, filled: dict, path: str):
        return build_stage_config(stage, settings, filled, self.source, path)

    def _inputs(self, **named: Path | str) -> dict[str, str]:
        """Input hashes: upstream artifacts by their manifest hash, files by content."""
        out = {}
        for name, value in named.items():
            p = Path(value)
            if self.dry_run and not p.exists():
                out[name] = "missing"
                continue
            out[name] = content_hash(p) if p.is_dir() else hash_path(p)
        return out

    # ---- entry point -------------------------------------------------------------------------
    def run(self) -> list[dict]:
        if not self.dry_run:
            self.workdir.mkdir(parents=True, exist_ok=True)
            # What `herd status` replays to tell done from stale.
            atomic_write_text(self.workdir / "config.yaml", yaml.safe_dump(to_dict(self.cfg), sort_keys=False))
        if not self.dry_run:
            from tqdm.auto import tqdm

            self.stages.bar = tqdm(total=self.stage_count(), unit="stage", desc="herd run", position=0)
        base, rm_init = self._base()
        current = self._round_zero(base, rm_init)
        total_steps = 0
        for r in range(1, self.cfg.rounds + 1):
            current = self._round(r, base, rm_init, current)
            total_steps += current.steps
        if self.cfg.control.enabled:
            self._control(base, total_steps)
        if not self.dry_run:
            self._report()
            self.stages.bar.close()
        return self.history

    def stage_count(self) -> int:
        """How many stages the run has (for the progress bar)."""
        c = self.cfg

        def trained(avg) -> int:
            return 1 + (len(avg.runs) + 1 if avg.runs else 0)

        n = int(c.base_model.startswith("tiny:")) + int(c.warm_start.enabled) + 1
        n += trained(c.reward.average) if c.reward.enabled and not c.reward.fixed_path else 0
        per_round = 2 + int(c.sft.curate is not None)
        per_round += trained(c.sft.average) if c.sft.enabled else 0
        per_round += trained(c.dpo.average) if c.dpo.enabled else 0
        n += per_round * c.rounds
        if c.reward.enabled and not c.reward.fixed_path and c.reward.data == "human+pairs":
            n += trained(c.reward.average) * (c.rounds - 1)
        return n + (2 if c.control.enabled else 0)

    # ---- round 0 -----------------------------------------------------------------------------
    def _base(self) -> tuple[Path, Path | None]:
        """The base policy dir (building the tiny model when asked) and the initial RM dir."""
        spec = self.cfg.base_model
        if spec.startswith("tiny:"):
            shape = spec.split(":", 1)[1] or "micro"
            out = self.workdir / "base"

            def build():
                from herd.core.tiny import build_tiny

                build_tiny(out, shape=shape, seed=self.cfg.seed)

            self.stages.run("round0.base", out, {"tiny": shape, "seed": self.cfg.seed}, {}, build)
            rm = Path(self.cfg.reward.model) if self.cfg.reward.model else out / "reward"
            return out / "policy", rm
        rm = Path(self.cfg.reward.model) if self.cfg.reward.model else None
        return Path(spec), rm

    def _round_zero(self, base: Path, rm_init: Path | None) -> RoundOutputs:
        policy = base
        if self.cfg.warm_start.enabled:
            out = self.workdir / "round_0" / "warm_start"
            scfg = self._stage_cfg(
                "warm_start", self.cfg.warm_start.settings,
                {"model": str(base), "data": list(self.cfg.data.sft), "output_dir": str(out)}, "warm_start.settings",
            )
            inputs = self._inputs(model=base, **{f"data{i}": p for i, p in enumerate(self.cfg.data.sft)})
            self.stages.run("round0.warm_start", out, to_dict(scfg), inputs, lambda: self._train("sft", scfg, out))
            policy = out
        outputs = RoundOutputs(policy=policy, policy_hash=content_hash(policy))
        self.eval_rm = self._eval_reward_model(rm_init)
        outputs.eval_dir = self._eval(0, outputs, None)
        return outputs

    def _eval_reward_model(self, rm_init: Path | None) -> Path | None:
        """One fixed RM judges reward and win rate in every round, so rounds compare."""
        if self.cfg.eval.reward_model:
            return Path(self.cfg.eval.reward_model)
        if self.cfg.reward.fixed_path or self.cfg.reward.enabled:
            return self._reward(0, self.workdir / "round_0", rm_init)
        return rm_init

    # ---- one round ---------------------------------------------------------------------------
    def _round(self, r: int, base: Path, rm_init: Path | None, prev: RoundOutputs) -> RoundOutputs:
        rdir = self.workdir / f"round_{r}"
        rm = self._reward(r, rdir, rm_init)
        sampler = prev.policy if self.cfg.sampling.sample_from == "latest" else (
            self.workdir / "round_0" / "warm_start" if self.cfg.sampling.sample_from == "warm_start" else base
        )
        sample_dir = self._sample(r, rdir, sampler, rm)
        steps = 0
        policy = prev.policy
        if self.cfg.sft.enabled:
            policy, n = self._sft(r, rdir, base, prev.policy, rm)
            steps += n
        if self.cfg.dpo.enabled:
            policy, n = self._dpo(r, rdir, policy, prev.policy)
            steps += n
        outputs = RoundOutputs(policy=policy, policy_hash=content_hash(policy), sample_dir=sample_dir, steps=steps)
        outputs.eval_dir = self._eval(r, outputs, prev)
        return outputs

    def _reward(self, r: int, rdir: Path, rm_init: Path | None) -> Path | None:
        """The reward model round ``r`` samples with.

        Round 0 trains one on the human preference data (it is also the fixed RM that judges
        every round's eval). With ``data: human+pairs`` later rounds retrain on human data plus
        the pairs sampled so far; with ``data: human`` the round-0 RM serves every round.
        """
        rc = self.cfg.reward
        if rc.fixed_path:
            return Path(rc.fixed_path)
        if not rc.enabled:
            return rm_init if "reward" in self.cfg.sampling.scorers else None
        if rm_init is None:
            raise ValueError(f"{self.source}: reward.model: no initial reward model to train from")
        if r <= 1 or rc.data == "human":
            dest, upto, out = self.workdir / "round_0" / "reward_data.jsonl", 0, self.workdir / "round_0" / "reward"
            r = 0
        else:
            dest, upto, out = rdir / "reward_data.jsonl", r - 1, rdir / "reward"
        if r not in self._reward_models:
            data = self._gather_pairs(dest, r, include_human=True, upto=upto)
            filled = {"model": str(rm_init), "output_dir": str(out), "data": {"path": str(data)}}
            self._reward_models[r] = self._train_averaged(
                "reward", r, out, rc.settings, rc.average, filled, {"model": rm_init, "data": data}
            )
        return self._reward_models[r]

    def _sample(self, r: int, rdir: Path, sampler: Path, rm: Path | None) -> Path:
        from herd.core.verifiers import NumberMatchVerifier

        out = rdir / "sample"
        prompt_sets = [
            {"path": ps.path, "name": ps.name, "system_prompt": ps.system_prompt, "limit": ps.limit, "format": ps.format}
            for ps in self.cfg.data.prompts
        ]
        settings = dict(self.cfg.sampling.settings)
        settings.setdefault("backend", self.cfg.generation.backend)
        if self.cfg.generation.engine:
            settings.setdefault("engine", self.cfg.generation.engine)
        scfg = self._stage_cfg(
            "sampling", settings,
            {"model": str(sampler), "output_dir": str(out), "prompt_sets": prompt_sets, "round": r},
            "sampling.settings",
        )
        names = sorted(self.cfg.sampling.scorers)
        if "reward" in names and rm is None:
            raise ValueError(f"{self.source}: sampling.scorers: 'reward' needs a reward model (reward.*)")
        inputs = self._inputs(model=sampler, **({"reward": rm} if rm and "reward" in names else {}),
                              **{f"prompts{i}": ps.path for i, ps in enumerate(self.cfg.data.prompts)})
        config = {"stage": to_dict(scfg), "safety": to_dict(self.cfg.safety), "scorers": names}

        def run():
            from herd.rejection_sampling import run_sampling

            scorers: dict = {}
            if "verifier" in names:
                scorers["verifier"] = NumberMatchVerifier()
            if "reward" in names:
                from herd.core.reward_scoring import RewardModelScorer

                scorers["reward"] = RewardModelScorer(str(rm), name="reward")
            run_sampling(scfg, scorers, safety=self._guard() if self.cfg.safety.filter_samples else None)
            return _read_metrics(out)

        self.stages.run(f"round{r}.sample", out, config, inputs, run)
        return out

    def _sft(self, r: int, rdir: Path, base: Path, prev_policy: Path, rm: Path | None) -> tuple[Path, int]:
        sc = self.cfg.sft
        data = self._gather_sft(rdir / "sft_data.jsonl", r)
        if sc.curate is not None:
            data = self._curate(r, rdir, data, rm)
        if _has_no_rows(data):
            self._skip(r, "sft", f"{data} has no rows (no prompt had a kept sample); the policy stays {prev_policy.name}")
            return prev_policy, 0
        init = base if sc.init == "base" else prev_policy
        out = rdir / "sft"
        filled = {"model": str(init), "data": [str(data)], "output_dir": str(out)}
        path = self._train_averaged("sft", r, out, sc.settings, sc.average, filled, {"model": init, "data": data})
        return path, _steps(path)

    def _dpo(self, r: int, rdir: Path, sft_model: Path, prev_policy: Path) -> tuple[Path, int]:
        dc = self.cfg.dpo
        if dc.data == "accumulate":
            data = self._gather_pairs(rdir / "dpo_data.jsonl", r, include_human=False, upto=r)
        else:
            data = rdir / "sample" / "pairs.jsonl"
        if _has_no_rows(data):
            # Every prompt's samples agreed (e.g. all verified correct): nothing to prefer.
            self._skip(r, "dpo", f"{data} has no preference pairs; the round's policy is its SFT model")
            return sft_model, 0
        out = rdir / "dpo"
        filled: dict[str, Any] = {"model": str(sft_model), "output_dir": str(out), "data": {"path": str(data)}}
        inputs: dict[str, Path] = {"model": sft_model, "data": data}
        if dc.reference == "rolling":
            filled.update(reference="path", reference_path=str(prev_policy))
            inputs["reference"] = prev_policy
        else:
            filled.update(reference="initial", reference_path=None)
        path = self._train_averaged("dpo", r, out, dc.settings, dc.average, filled, inputs)
        return path, _steps(path)

    def _curate(self, r: int, rdir: Path, data: Path, rm: Path | None) -> Path:
        """Curate this round's SFT rows (Llama 3 §4.2.3) with the ``sft.curate`` settings.

        ``quality.reward_model: round`` scores quality with the reward model this round sampled
        with; a path uses that model; the judge comes from ``judge.model``. Embeddings are cached
        under the workdir across rounds, so accumulated rows are embedded once per run.
        """
        out = rdir / "curated"
        settings = copy.deepcopy(dict(self.cfg.sft.curate or {}))
        quality = settings.get("quality") or {}
        if quality.get("reward_model") == "round":
            if rm is None:
                raise ValueError(f"{self.source}: sft.curate.quality.reward_model: 'round' needs a reward model "
                                 "(reward.enabled, reward.fixed_path or reward.model)")
            settings["quality"] = {**quality, "reward_model": str(rm)}
        ccfg = self._stage_cfg("curate", settings, {"input": str(data), "output": str(out)}, "sft.curate")
        if ccfg.dedup.cache_dir is None:
            ccfg.dedup.cache_dir = self.workdir / "cache" / "curate-embeddings"
        models = {"reward_model": ccfg.quality.reward_model} if ccfg.quality.reward_model else {}
        if ccfg.judge.model and (ccfg.quality.judge or ccfg.difficulty.judge):
            models["judge"] = ccfg.judge.model

        def run():
            from herd.sft.curation import curate, write_curated
            from herd.sft.curation.cli import judge_backend, quality_scorer

            backend = judge_backend(ccfg)
            try:
                result = curate(ccfg, str(data), quality_scorer=quality_scorer(ccfg), judge_backend=backend)
            finally:
                if backend is not None:
                    backend.close()
            write_curated(result, out, config=to_dict(ccfg))
            return _read_metrics(out, "summary.json")

        self.stages.run(f"round{r}.curate", out, to_dict(ccfg), self._inputs(data=data, **models), run)
        return out / "data.jsonl"

    def _skip(self, r: int, stage: str, why: str) -> None:
        """A training stage with nothing to train on: said in the log and the round's history,
        counted on the progress bar, and the round goes on with the model it has."""
        log.warning("round%d.%s skipped: %s", r, stage, why)
        self.skipped.append({"round": r, "stage": stage, "why": why})
        if self.stages.bar is not None:
            self.stages.bar.update(1)

    # ---- training helpers --------------------------------------------------------------------
    def _train(self, stage: str, stage_cfg, out: Path) -> dict:
        """Run a training stage in process or under ``accelerate launch`` (per ``launch``)."""
        launcher.train(stage, stage_cfg, self.cfg.launch, self.workdir / "logs")
        return _read_metrics(out)

    def _train_averaged(self, stage: str, r: int, out: Path, settings: dict, average, filled: dict,
                        inputs: dict[str, Path]) -> Path:
        """Train once, or (Llama 3 §4.1.5) once per averaging run and average the checkpoints."""
        key = f"round{r}.{stage}"
        hashed = self._inputs(**inputs)
        if not average.runs:
            cfg = self._stage_cfg(stage, settings, filled, f"{stage}.settings")
            self.stages.run(key, out, to_dict(cfg), hashed, lambda: self._train(stage, cfg, out))
            return out
        members = []
        for i, extra in enumerate([{}] + list(average.runs)):
            member = out.parent / f"{stage}_avg{i}"
            cfg = self._stage_cfg(stage, {**settings, **extra}, {**filled, "output_dir": str(member)},
                                  f"{stage}.average.runs[{i - 1}]" if i else f"{stage}.settings")
            self.stages.run(f"{key}.avg{i}", member, to_dict(cfg), hashed,
                            lambda cfg=cfg, member=member: self._train(stage, cfg, member))
            members.append(member)

        def average_now():
            from herd.core.artifacts import atomic_dir
            from herd.core.averaging import average_checkpoints

            with atomic_dir(out) as tmp:
                average_checkpoints(members, tmp, average.weights)
            steps = sum(_steps(m) for m in members)
            return {"steps": steps, "averaged": len(members)}

        member_inputs = {m.name: content_hash(m) for m in members}
        self.stages.run(key, out, {"average": to_dict(average)}, member_inputs, average_now)
        return out

    # ---- data accumulation -------------------------------------------------------------------
    def _gather_sft(self, dest: Path, r: int) -> Path:
        """This round's SFT rows: kept samples of this round or of every round so far (+ seed)."""
        first = 1 if self.cfg.sft.data == "accumulate" else r
        sources = [self.workdir / f"round_{i}" / "sample" / "sft.jsonl" for i in range(first, r + 1)]
        if self.cfg.sft.include_seed_data:
            sources = [Path(p) for p in self.cfg.data.sft] + sources
        return _concat_jsonl(dest, sources, self.dry_run)

    def _gather_pairs(self, dest: Path, r: int, include_human: bool, upto: int) -> Path:
        sources = [Path(p) for p in self.cfg.data.preference] if include_human else []
        sources += [self.workdir / f"round_{i}" / "sample" / "pairs.jsonl" for i in range(1, upto + 1)]
        if not sources:
            raise ValueError(f"{self.source}: round {r}: no preference data (data.preference is empty)")
        return _concat_jsonl(dest, sources, self.dry_run)

    # ---- eval, control, report ---------------------------------------------------------------
    def _guard(self):
        if self.cfg.safety.classifier is None:
            return None
        if self._safety is None:
            from herd.safety import load_classifier

            self._safety = load_classifier(self.cfg.safety.classifier)
        return self._safety

    def _eval(self, r: int | str, outputs: RoundOutputs, prev: RoundOutputs | None, tag: str | None = None) -> Path:
        name = tag or f"round_{r}"
        out = self.workdir / name / "eval"
        settings = dict(self.cfg.eval.settings)
        previous = prev.eval_dir / "metrics.json" if prev is not None and prev.eval_dir else None
        ecfg = self._stage_cfg("eval", settings, {"output_dir": str(out), "previous_metrics": str(previous) if previous else None}, "eval.settings")
        if self.cfg.generation.eval_backend != "same":
            ecfg.generation.backend = self.cfg.generation.eval_backend
        elif "backend" not in settings.get("generation", {}):
            ecfg.generation.backend = self.cfg.generation.backend
        rm = str(self.eval_rm) if self.eval_rm else None
        inputs = {"model": outputs.policy_hash}
        if prev is not None:
            inputs["baseline"] = prev.policy_hash
        if rm:
            inputs["reward_model"] = content_hash(Path(rm))

        def run():
            from herd.eval import run_eval
            from herd.loop.eval_cli import EvalJobConfig, build_judges

            job = EvalJobConfig(model=str(outputs.policy), baseline=str(prev.policy) if prev else None, round=r if isinstance(r, int) else None,
                                reward_model=rm, guard=self.cfg.safety.classifier, eval=ecfg)
            scorers, safety, refusal = build_judges(job)
            return run_eval(ecfg, job.model, job.baseline, scorers, safety, refusal, round_index=job.round)

        manifest = self.stages.run(f"{name.replace('_', '')}.eval", out, to_dict(ecfg), inputs, run)
        metrics = _read_metrics(out)
        metrics["round"] = r
        metrics["optimizer_steps"] = outputs.steps
        self.history.append(metrics)
        if not self.dry_run:
            self._print_row(metrics)
        return out

    def _control(self, base: Path, total_steps: int) -> None:
        """Same optimizer steps as the loop, spent on plain SFT of the seed data (the control)."""
        start = self.workdir / "round_0" / "warm_start" if self.cfg.warm_start.enabled else base
        out = self.workdir / "control" / "sft"
        settings = {**self.cfg.control.settings, "max_steps": max(1, total_steps)}
        cfg = self._stage_cfg("control", settings, {"model": str(start), "data": list(self.cfg.data.sft), "output_dir": str(out)}, "control.settings")
        inputs = self._inputs(model=start, **{f"data{i}": p for i, p in enumerate(self.cfg.data.sft)})
        self.stages.run("control.sft", out, to_dict(cfg), inputs, lambda: self._train("sft", cfg, out))
        outputs = RoundOutputs(policy=out, policy_hash=content_hash(out), steps=_steps(out))
        self._eval("control", outputs, None, tag="control")

    def _print_row(self, m: dict) -> None:
        cols = ("verifier_accuracy", "reward_mean", "violation_rate", "false_refusal_rate", "optimizer_steps")
        cells = [f"{m.get(c):.3f}" if isinstance(m.get(c), float) else str(m.get(c)) for c in cols]
        if not getattr(self, "_header_printed", False):
            print("round    " + "  ".join(f"{c:>18}" for c in cols), file=sys.stderr)
            self._header_printed = True
        print(f"{str(m['round']):<8} " + "  ".join(f"{c:>18}" for c in cells), file=sys.stderr)

    def _report(self) -> None:
        from herd.eval import write_report

        rounds = [m for m in self.history if isinstance(m.get("round"), int)]
        write_report(rounds, self.workdir / "report")
        control = [m for m in self.history if m.get("round") == "control"]
        from herd.loop.summary import write_summary

        write_summary(self.workdir / "report", rounds, control[0] if control else None, self.skipped)


def _has_no_rows(path: Path) -> bool:
    """True for an existing data file without a single non-blank line (a plan for a file that
    is not written yet is not a skip)."""
    if not path.exists():
        return False
    with path.open("rb") as f:
        return not any(line.strip() for line in f)


def _read_metrics(out: Path, name: str = "metrics.json") -> dict:
    p = out / name
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def _steps(model_dir: Path) -> int:
    m = _read_metrics(model_dir)
    return int(m.get("steps") or m.get("global_step") or 0)


def _concat_jsonl(dest: Path, sources: list[Path], dry_run: bool = False) -> Path:
    if dry_run:
        return dest  # planning reads what the last real run wrote; it writes nothing
    from herd.core.chat_data import hh_to_preference
    from herd.core.jsonl import iter_jsonl

    rows = []
    for src in sources:
        if not src.exists():
            raise FileNotFoundError(f"{src}: expected data file is missing")
        for _, row in iter_jsonl(src):
            # HH-RLHF pairs are whole dialogues; the preference stages read prompt/chosen/rejected.
            if isinstance(row.get("chosen"), str) and "prompt" not in row:
                row = hh_to_preference(row)
            rows.append(row)
    atomic_write_jsonl(dest, rows)
    return dest
