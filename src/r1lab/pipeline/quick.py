"""``r1lab demo --quick``: every stage of the R1 recipe at a toy size (the end-to-end test, ~2 minutes).

The numbers it produces mean nothing; that it runs every stage, writes every artifact and resumes does.
"""

_RL = {"steps": 2, "prompts_per_step": 4, "group_size": 2, "max_new_tokens": 24, "eval_every": 2,
       "eval_examples": 4, "eval_samples": 2, "checkpoint_every": 1,
       "preflight": False}  # toy models may well score all zeros: the toy run goes on regardless
_SAMPLE = {"prompts": 12, "samples_per_prompt": 2, "max_new_tokens": 24, "min_examples": 12}
_SFT = {"epochs": 1, "batch_size": 8, "checkpoint_every": 2}

QUICK = {
    "pretrain": {"steps": 40, "batch_size": 8, "seq_len": 128, "tokenizer_docs": 1000, "size": "0.5m",
                 "checkpoint_every": 20},
    "zero": _RL,
    "cold_start": {"sample": _SAMPLE, "sft": _SFT},
    "reasoning_rl": _RL,
    "rejection_sft": {"sample": _SAMPLE, "sft": _SFT},
    "preference": {"rm": {"train_pairs": 32, "test_pairs": 16, "batch_size": 8, "epochs": 1}, "onpolicy": {**_SAMPLE, "prompts": 8}},
    "r1": {**_RL, "general_steps": 1},
    "distill": {"student_pretrain": {"steps": 10, "batch_size": 4, "seq_len": 64, "tokenizer_docs": 200},
                "traces": {**_SAMPLE, "samples_per_prompt": 1}, "sft": _SFT, "rl": _RL},
    "eval": {"examples": 6, "samples": 2, "max_new_tokens": 24, "hard_examples": 4, "general_examples": 6,
             "general_max_new_tokens": 16},
}
