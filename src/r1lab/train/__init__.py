"""Explicit training loops: pretraining, GRPO, SFT."""
