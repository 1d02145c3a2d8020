"""LoRA (Hu et al. 2021) through the ``peft`` library, for GRPO and SFT (``pip install 'r1lab[lora]'``).

The trainers keep working on the Hugging Face model itself: ``attach_lora`` injects PEFT's LoRA layers
into it in place (q_proj becomes a ``lora.Linear`` wrapping the frozen base projection) and returns the
same object, so the grouped training forward, the native sampler, DDP and checkpoints see the model they
know. Where those read a projection's weight directly (fused q/k/v and gate/up, ``models/llama.py``),
``linear_weight`` gives W + (alpha / r) B A, computed from the adapter at each use: nothing is merged
into the base weights during training (merging and unmerging drifts them by rounding) and gradients
reach A and B through the product.

- The reference policy of GRPO is the same model with its adapter disabled (``AdapterOff``): no copy.
- Checkpoints hold only the adapter (``adapter_only``) and the optimizer state of its parameters.
- The finished model is written twice: ``model/`` merged (plain ``AutoModelForCausalLM``) and
  ``model_adapter/`` (``PeftModel.from_pretrained(base, model_adapter)``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from r1lab.errors import UserError

# attention and MLP projections of Llama-family models (Llama, Mistral, Qwen2/3, SmolLM2)
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
_PEFT_HANDLE = "_r1lab_peft"   # the PeftModel wrapping a model that ``attach_lora`` adapted
ADAPTER_ONLY = "_r1lab_adapter_only"  # read by runtime/fsdp.model_state: checkpoint the adapter only


@dataclass
class LoraSettings:
    r: int = 0                       # rank; 0: no LoRA (every weight trains)
    alpha: float | None = None       # scaling alpha / r; null: 2 r
    dropout: float = 0.0             # on the adapter's input (> 0 leaves the grouped training forward)
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    lr: float | None = None          # learning rate with LoRA (typically ~10x full fine-tuning's); null: lr

    @property
    def enabled(self) -> bool:
        return self.r > 0

    def lr_or(self, lr: float) -> float:
        """The learning rate to train with: ``lora.lr`` when LoRA is on and sets one, else ``lr``."""
        return self.lr if (self.enabled and self.lr is not None) else lr

    def validate(self) -> None:
        from r1lab.config import require

        require(self.r >= 0, "lora.r", f"must be >= 0 (0 turns LoRA off), got {self.r}")
        require(self.alpha is None or self.alpha > 0, "lora.alpha", f"must be positive, got {self.alpha}")
        require(0.0 <= self.dropout < 1.0, "lora.dropout", f"must be in [0, 1), got {self.dropout}")
        require(len(self.target_modules) > 0, "lora.target_modules", "must name at least one module")
        require(self.lr is None or self.lr > 0, "lora.lr", f"must be positive, got {self.lr}")


def attach_lora(model, settings: LoraSettings):
    """Inject LoRA adapters into ``model`` in place (base weights frozen) and return it; unchanged when
    ``settings.r`` is 0. A model PEFT cannot adapt, or targets it lacks, stop with a UserError."""
    if not settings.enabled:
        return model
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise UserError("lora.r > 0 needs the peft package: pip install 'r1lab[lora]'") from None
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha if settings.alpha is not None else 2 * settings.r,
                        lora_dropout=settings.dropout, target_modules=list(settings.target_modules), bias="none",
                        task_type="CAUSAL_LM")
    try:
        peft_model = get_peft_model(model, config)
    except (ValueError, TypeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"config key 'lora.target_modules' {settings.target_modules}: PEFT cannot adapt "
                        f"{type(model).__name__} ({first})") from None
    object.__setattr__(model, _PEFT_HANDLE, peft_model)  # not a submodule: no cycle in modules()/state_dict
    object.__setattr__(model, ADAPTER_ONLY, True)
    return model


def has_lora(model) -> bool:
    return getattr(model, _PEFT_HANDLE, None) is not None


def peft_model_of(model):
    """The ``PeftModel`` around a model adapted by ``attach_lora``."""
    return getattr(model, _PEFT_HANDLE)


def lora_active(module) -> bool:
    """A PEFT LoRA layer whose adapters are on and not merged into its base weight."""
    return (hasattr(module, "base_layer") and hasattr(module, "lora_A") and not module.disable_adapters
            and not module.merged)


def linear_weight(module) -> torch.Tensor:
    """The weight a linear layer applies: its own, or for a PEFT LoRA layer W + sum_a s_a B_a A_a over the
    active adapters (differentiable in A and B). Equals the layer's forward when its dropout is off."""
    if not hasattr(module, "base_layer"):
        return module.weight
    w = module.get_base_layer().weight
    if not lora_active(module):
        return w
    for name in module.active_adapters:
        if name in module.lora_A:
            w = w + module.scaling[name] * (module.lora_B[name].weight @ module.lora_A[name].weight)
    return w


def linear_bias(module):
    return module.get_base_layer().bias if hasattr(module, "base_layer") else module.bias


def lora_dropout_active(model) -> bool:
    """True when a LoRA layer would drop adapter inputs now (training with dropout > 0): its output is then
    not a function of one effective weight."""
    if not model.training:
        return False
    for m in model.modules():
        if lora_active(m):
            for d in m.lora_dropout.values():
                if isinstance(d, torch.nn.Dropout) and d.p > 0:
                    return True
    return False


class AdapterOff:
    """The reference policy of a LoRA run: the policy's own modules with the adapter disabled (no copy).
    ``with ref.active() as model:`` gives the model computing the base policy inside the block."""

    def __init__(self, model):
        self.model = model

    @contextlib.contextmanager
    def active(self):
        with peft_model_of(self.model).disable_adapter():
            yield self.model


def reference_view(ref_model):
    """``with reference_view(ref) as model``: the module computing the reference policy (a plain reference
    model as it is; an ``AdapterOff`` with its adapter disabled for the block)."""
    return ref_model.active() if isinstance(ref_model, AdapterOff) else contextlib.nullcontext(ref_model)


def save_trained_model(model, tokenizer, path: Path) -> None:
    """Write the trained model to ``path`` in HF format; a LoRA model merged there, and its adapter (with the
    tokenizer) to ``path``_adapter. Merging is in place: ``model`` is a plain model with the adapter folded in
    afterwards. Every rank calls it (FSDP gathers); rank 0 writes."""
    from r1lab.runtime.dist import is_main
    from r1lab.runtime.fsdp import save_pretrained

    path = Path(path)
    if not has_lora(model):
        save_pretrained(model, tokenizer, path)
        return
    peft_model = peft_model_of(model)
    if is_main():
        adapter_dir = path.with_name(path.name + "_adapter")
        peft_model.save_pretrained(str(adapter_dir))
        tokenizer.save_pretrained(str(adapter_dir))
    merged = peft_model.merge_and_unload()
    for attr in (_PEFT_HANDLE, ADAPTER_ONLY):
        model.__dict__.pop(attr, None)
    save_pretrained(merged, tokenizer, path)
