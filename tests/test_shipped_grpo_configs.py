"""The real-model recipes in configs/ load, validate, and say what they are."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from r1lab.config import load_config
from r1lab.train.grpo import GRPOConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["smollm2_cpu.yaml", "qwen2.5-1.5b_lora_gpu.yaml"])
def test_real_model_config_loads_and_validates(name):
    cfg = load_config(GRPOConfig, str(ROOT / "configs" / name), [])
    cfg.validate()
    assert cfg.template == "chat" and "\\boxed{}" in cfg.instruction
    assert cfg.precision == ("auto" if "cpu" in name else "bf16")  # laptops without native bf16 get fp32
    assert set(cfg.rewards) == {"accuracy"}  # no R1-Zero tag format on chat answers


def test_gpu_recipe_uses_lora_and_says_it_is_untested():
    text = (ROOT / "configs" / "qwen2.5-1.5b_lora_gpu.yaml").read_text()
    cfg = load_config(GRPOConfig, str(ROOT / "configs" / "qwen2.5-1.5b_lora_gpu.yaml"), [])
    assert cfg.lora.enabled and cfg.lora.r == 16 and cfg.lora.lr == 1e-4 and cfg.device == "cuda"
    assert "UNTESTED" in text


def test_smollm2_config_is_the_benchmarks_recipe():
    spec = importlib.util.spec_from_file_location("smollm2_zero_for_config", ROOT / "benchmarks" / "smollm2_zero.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = bench.parse_args([])
    cfg = load_config(GRPOConfig, str(ROOT / "configs" / "smollm2_cpu.yaml"), [])
    assert (cfg.steps, cfg.prompts_per_step, cfg.group_size, cfg.max_new_tokens, cfg.lr) == \
        (args.steps, args.prompts, args.group, args.max_new_tokens, args.lr)
    assert cfg.task == "arith" and cfg.task_options["min_ops"] == args.min_ops == cfg.task_options["max_ops"] == args.max_ops
    assert cfg.instruction == bench.INSTRUCTION and cfg.rewards == bench.ARMS["accuracy"]
