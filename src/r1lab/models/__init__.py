"""Model and tokenizer loading, the tiny model configurations, and the tiny-world tokenizer."""

from r1lab.models.load import (check_model, check_model_dir, check_reward_model, load_model,
                               load_model_and_tokenizer, load_tokenizer)
from r1lab.models.tiny import SIZES, tiny_config

__all__ = ["SIZES", "check_model", "check_model_dir", "check_reward_model", "load_model", "load_model_and_tokenizer", "load_tokenizer", "tiny_config"]
