"""Rule-based rewards and verifiers: accuracy (task verifiers, math grader), format, language, code sandbox."""

from r1lab.rewards.format import format_reward, is_r1zero_format
from r1lab.rewards.registry import REWARDS, RewardFailures, build_rewards, score_all

__all__ = ["REWARDS", "RewardFailures", "build_rewards", "format_reward", "is_r1zero_format", "score_all"]
