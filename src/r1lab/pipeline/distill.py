"""Distillation (R1-v1 §2.4): SFT smaller dense students on the final teacher's traces, no RL; and the
paper's control (Table 6): R1-Zero-style RL directly on the smallest student.

Stages: ``distill_traces`` (the teacher's correct, readable traces plus its answers to general prompts),
``student_<size>`` (pretrain a student base on the world's corpus with the teacher's tokenizer, then SFT
on the traces), ``rl_only_<size>`` (GRPO from that student's base, the R1-Zero recipe).
"""

from __future__ import annotations

import dataclasses
import random
import shutil
from pathlib import Path

from r1lab.pipeline.progress import progress_bar
from r1lab.pipeline.stage import run_stage
from r1lab.runtime import print0
from r1lab.tasks import get_task
from r1lab.train.prebuilt import find_prebuilt, install_prebuilt
from r1lab.train.pretrain import pretrain


def _traces_stage(cfg, run_dir: Path, teacher_dir: Path) -> Path:
    from r1lab.pipeline.r1 import R1_TEMPLATE, cached_rows, sample_model, sampled_rows

    dc = cfg.distill

    def build():
        reasoning = get_task(cfg.zero.task, **cfg.zero.task_options)
        rows, stats = sampled_rows(reasoning, teacher_dir, R1_TEMPLATE, dc.traces, "r1")
        general = get_task("general")
        g_examples = general.examples("train", n=max(1, round(len(rows) * dc.general_ratio)), seed=dc.traces.seed)
        g_rollouts = sample_model(teacher_dir, g_examples, R1_TEMPLATE, dataclasses.replace(dc.traces, samples_per_prompt=1))
        n_general = 0
        for r in g_rollouts:  # the teacher's own answers to general prompts, when they are right
            ex = g_examples[r.prompt_index]
            if general.verify(r.text, ex).correct and r.finish_reason != "length":
                rows.append({"id": ex.id, "question": ex.prompt, "response": r.text.strip(), "source": "teacher_general",
                             "lang": "en"})
                n_general += 1
        random.Random(dc.traces.seed).shuffle(rows)
        return rows, {**stats, "general": n_general}

    def work(d: Path) -> dict:
        rows = cached_rows(d / "data.jsonl", build)
        return {"data": str(d / "data.jsonl"), "examples": len(rows)}

    return Path(run_stage(run_dir, "distill_traces", work, dc.traces)["data"])


def _student_base(cfg, d: Path, size: str, base_dir: Path) -> Path:
    """Pretrain a student of ``size`` with the teacher's tokenizer (the same corpus and seed), or use the
    shipped one pretrained so (R1's students start from pretrained Qwen2.5 and Llama bases)."""
    pc = dataclasses.replace(cfg.distill.student_pretrain, size=size)

    def work(bd: Path) -> dict:
        shipped = find_prebuilt(pc, base_dir / "tokenizer.json") if cfg.prebuilt else None
        if shipped is not None:
            return {"model": str(bd / "model"), **install_prebuilt(shipped, bd)}
        if not (bd / "tokenizer" / "tokenizer.json").is_file():
            shutil.copytree(base_dir, bd / "tokenizer", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.safetensors", "config.json", "generation_config.json"))
        with progress_bar(f"pretrain {size}", pc.steps) as bar:
            info = pretrain(pc, bd, progress=bar)
        return {"model": str(bd / "model"), **info}

    return Path(run_stage(d, "base", work, pc)["model"])


def distill_stage(cfg, run_dir: Path, teacher_dir: Path, base_dir: Path) -> dict[str, tuple[Path, str]]:
    """Returns {row label: (model dir, prompt template)} for the report."""
    from r1lab.pipeline.r1 import R1_TEMPLATE, sft_stage_model
    from r1lab.runtime import read_jsonl

    dc = cfg.distill
    traces = read_jsonl(_traces_stage(cfg, run_dir, teacher_dir))
    out: dict[str, tuple[Path, str]] = {}
    for size in dc.student_sizes:
        name = f"student_{size}"

        def work(d: Path, size=size) -> dict:
            sb = _student_base(cfg, d, size, base_dir)
            info = sft_stage_model(dc.sft, sb, traces, d, f"distill {size}")
            return {"model": str(d / "model"), "student_base": str(sb), **info}

        art = run_stage(run_dir, name, work, dc.sft)
        out[name] = (Path(art["model"]), R1_TEMPLATE)
    out.update(rl_controls(cfg, run_dir, base_dir))
    return out


def rl_controls(cfg, run_dir: Path, base_dir: Path) -> dict[str, tuple[Path, str]]:
    """The paper's control (Table 6): R1-Zero-style RL on each ``rl_sizes`` student's base (the student
    stage's own base, made here first when the control runs before it: ``pipeline/lanes.py``)."""
    from r1lab.pipeline.r1 import rl_stage

    dc = cfg.distill
    out = {}
    for size in dc.rl_sizes:
        student_base = _student_base(cfg, run_dir / f"student_{size}", size, base_dir)
        print0(f"[distill] control: R1-Zero-style RL on the {size} student's base")
        out[f"rl_only_{size}"] = (rl_stage(f"rl_only_{size}", dc.rl, run_dir, student_base), dc.rl.template)
    return out


def size_value(size: str) -> float:
    """A student size's parameter count in millions ("0.25m" -> 0.25)."""
    return float(size.rstrip("m"))
