"""Runtime plumbing: device, seeding, torch.distributed, metric logging, atomic writes."""

from r1lab.runtime.dist import all_reduce_mean, all_reduce_sum, any_rank, barrier, init_from_env, is_main, print0, rank, shutdown, world_size, wrap_ddp
from r1lab.runtime.io import atomic_write_json, atomic_write_text, read_jsonl, read_jsonl_numbered, write_jsonl_atomic
from r1lab.runtime.logging import MetricLogger, read_metrics
from r1lab.runtime.seed import get_rng_state, seed_everything, set_rng_state
from r1lab.runtime.device import autocast_ctx, pick_device, setup_threads

__all__ = [
    "all_reduce_mean", "all_reduce_sum", "any_rank", "barrier", "init_from_env", "wrap_ddp", "is_main", "print0", "rank", "shutdown", "world_size",
    "atomic_write_json", "atomic_write_text", "read_jsonl", "read_jsonl_numbered", "write_jsonl_atomic",
    "MetricLogger", "read_metrics", "get_rng_state", "seed_everything", "set_rng_state",
    "autocast_ctx", "pick_device", "setup_threads",
]
