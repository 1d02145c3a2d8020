"""Pure tensor math for R1-style RL: advantages, policy losses, KL estimators, pass@k.

Imports only torch (and the standard library). No config objects, no I/O, no distributed calls.
"""

from r1lab.core.advantages import ADVANTAGES, group_advantages
from r1lab.core.losses import (AGGREGATIONS, IS_LEVELS, OBJECTIVES, RATIO_LEVELS, aggregate, check_loss_options, kl_k3,
                               policy_loss, sft_loss)
from r1lab.core.metrics import pass_at_k
from r1lab.core.logprobs import entropy_from_logits, token_logprobs

__all__ = [
    "ADVANTAGES", "group_advantages", "AGGREGATIONS", "aggregate", "kl_k3", "policy_loss", "sft_loss",
    "RATIO_LEVELS", "OBJECTIVES", "IS_LEVELS", "check_loss_options",
    "pass_at_k", "entropy_from_logits", "token_logprobs",
]
