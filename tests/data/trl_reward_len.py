# The reward function of TRL's GRPOTrainer documentation, copied unchanged: the tests check that a TRL
# user's reward file works with r1lab as it is.
def reward_len(completions, **kwargs):
    return [-abs(20 - len(completion)) for completion in completions]
