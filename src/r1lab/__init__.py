"""r1lab: DeepSeek-R1 end to end (R1-Zero GRPO, the four-stage R1 recipe, distillation, R1-style evaluation)."""

__version__ = "0.1.0"
