"""Data parallelism for training: DDP (a full replica a rank) or FSDP (``parallel: fsdp``: parameters,
gradients and optimizer state sharded over the ranks, for models that do not fit one device).

FSDP here is PyTorch's FSDP2 (``torch.distributed.fsdp.fully_shard``): every decoder layer is a unit,
the root holds the embeddings, final norm and LM head. What r1lab adds around it:

- generation: the sampler calls the model's submodules directly, so ``full_weights`` all-gathers every
  unit's parameters for the duration of a ``generate`` call and reshards them after (as TRL and verl do
  for their generation engines; peak memory during generation is one full copy of the weights);
- training forward: FSDP models take the padded layout (the model's own forward, whose hooks gather each
  layer just in time), like DDP-wrapped ones;
- checkpoints: full (unsharded) state dicts, gathered by every rank and written by rank 0, so a
  checkpoint resumes under any world size and loads as an ordinary model; every rank reads it back
  (one node, or a filesystem the ranks share).

Every function is a no-op passthrough for models that are not sharded.
"""

from __future__ import annotations

import contextlib

import torch

PARALLEL_MODES = ("ddp", "fsdp")


def _fsdp2():
    """(fully_shard, FSDPModule), or None on a torch without FSDP2 (public since 2.6, private before)."""
    try:
        from torch.distributed.fsdp import FSDPModule, fully_shard
    except ImportError:  # pragma: no cover - torch 2.4/2.5
        try:
            from torch.distributed._composable.fsdp import FSDPModule, fully_shard
        except ImportError:
            return None
    return fully_shard, FSDPModule


def is_fsdp(model) -> bool:
    api = _fsdp2()
    return api is not None and isinstance(model, api[1])


def _units(model) -> list:
    unit = _fsdp2()[1]
    return [m for m in model.modules() if isinstance(m, unit)]


def shard(model, mode: str = "fsdp"):
    """With ``mode="fsdp"`` under torchrun: ``fully_shard`` each decoder layer, then the whole model (in
    place). Otherwise (DDP, or one process) the model as it is. Call it before building the optimizer,
    which must hold the sharded parameters. The device mesh is the default one (CPU with gloo, CUDA
    with NCCL)."""
    from r1lab.errors import UserError
    from r1lab.runtime.dist import world_size

    if mode != "fsdp" or world_size() == 1:
        return model

    api = _fsdp2()
    if api is None:
        raise UserError(f"parallel=fsdp needs FSDP2 (torch >= 2.4); this is torch {torch.__version__}")
    fully_shard = api[0]
    inner = model.get_decoder() if hasattr(model, "get_decoder") else None
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise UserError(f"parallel=fsdp: cannot find the decoder layers of {type(model).__name__}")
    for layer in layers:
        fully_shard(layer)
    fully_shard(model)
    return model


def wrap(model, mode: str):
    """The module to train through: a DDP wrapper (``mode="ddp"`` under torchrun), else the model itself
    (one process, or a model ``shard`` sharded)."""
    from r1lab.runtime.dist import wrap_ddp

    if mode == "fsdp" or is_fsdp(model):
        return model
    return wrap_ddp(model) or model


@contextlib.contextmanager
def full_weights(model):
    """Every parameter of ``model`` whole (all-gathered) inside the block; sharded again after."""
    if not is_fsdp(model):
        yield model
        return
    units = _units(model)
    for u in units:
        u.unshard()
    try:
        yield model
    finally:
        for u in units:
            u.reshard()


# set on a model by r1lab.models.lora.attach_lora: its checkpoints hold the LoRA adapter only (the base
# weights are frozen and reloaded from the model directory)
_ADAPTER_ONLY = "_r1lab_adapter_only"


def model_state(model) -> dict:
    """The model's state dict; under FSDP the full one, gathered (every rank must call; rank 0 gets the
    tensors on CPU, the others an empty dict). A LoRA model's: the adapter's tensors only."""
    if getattr(model, _ADAPTER_ONLY, False):
        return {k: v for k, v in model.state_dict().items() if ".lora_" in k}
    if not is_fsdp(model):
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def optimizer_state(model, optimizer) -> dict:
    if not is_fsdp(model):
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer,
                                    options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_model_state(model, state: dict) -> None:
    if getattr(model, _ADAPTER_ONLY, False):
        expected = set(model_state(model))
        if set(state) != expected:  # a checkpoint of full training, or of another rank or targets
            from r1lab.errors import UserError

            raise UserError(f"a checkpoint holds {len(state)} tensors where this run's LoRA adapter has "
                            f"{len(expected)}: it was written with other lora.* settings (or without LoRA); "
                            "remove the stage's checkpoints/ to start over")
        model.load_state_dict(state, strict=False)
        return
    if not is_fsdp(model):
        model.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))


def load_optimizer_state(model, optimizer, state: dict) -> None:
    if not is_fsdp(model):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def save_pretrained(model, tokenizer, path) -> None:
    """``model.save_pretrained`` by rank 0, with the full weights under FSDP (every rank must call)."""
    from r1lab.runtime.dist import is_main

    state = model_state(model) if is_fsdp(model) else None
    if state and getattr(model.config, "tie_word_embeddings", False):
        tied = getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or {}
        for key in (tied if isinstance(tied, (dict, list, tuple, set)) else []):
            state.pop(key, None)  # gathered as a separate copy; the model ties it back on load
    if is_main():
        model.save_pretrained(str(path), safe_serialization=True, **({"state_dict": state} if state else {}))
        tokenizer.save_pretrained(str(path))


def local_norm(gnorm: torch.Tensor) -> torch.Tensor:
    """A gradient norm as a plain tensor (``clip_grad_norm_`` returns a DTensor under FSDP)."""
    return gnorm.full_tensor() if hasattr(gnorm, "full_tensor") else gnorm
