"""Data parallelism: 2 gloo processes on CPU give the same loss and parameters as one process on the
same global batch (GRPO update and SFT)."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from r1lab.runtime import shutdown


def _init(rank, world, init_file):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)


def _grpo_batch(tokenizer):
    from r1lab.train.batch import build_batch

    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(3, 200, (int(n),), generator=g).tolist() for n in (5, 7, 6, 9, 4, 8, 5, 6)]
    resps = [torch.randint(3, 200, (int(n),), generator=g).tolist() for n in (3, 6, 2, 8, 5, 4, 7, 1)]
    batch = build_batch(prompts, resps, tokenizer.eos_token_id)
    adv = torch.tensor([1.0, -0.5, 0.3, -1.2, 0.8, 0.0, -0.7, 1.5])
    return batch, adv


def _grpo_run(model_dir, rows, parallel="ddp"):
    """One GRPO update (k3 KL to a reference, token-mean: the case that needs global normalisation)."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    from r1lab.runtime import all_reduce_mean
    from r1lab.runtime.fsdp import model_state, shard, wrap
    from r1lab.train.grpo import GRPOConfig, batch_logprobs, grpo_update
    from r1lab.train.schedule import make_optimizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = LlamaForCausalLM.from_pretrained(model_dir)
    ref = LlamaForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():  # make the reference differ so the KL term matters
        for p in ref.parameters():
            p.add_(0.01)
    shard(model, parallel)
    shard(ref, parallel)
    cfg = GRPOConfig(kl_coef=0.1, loss_agg="token-mean", micro_batch_size=2, lr=1e-2, prompts_per_step=2, group_size=4)
    batch, adv = _grpo_batch(tok)
    idx = torch.tensor(rows)
    batch, adv = batch.select(idx), adv[idx]
    ref_lp = batch_logprobs(ref, batch, cfg, None)
    # plain SGD: Adam's first step is ~lr*sign(g), which turns float-summation-order noise in
    # near-zero gradients into lr-sized differences; the claim under test is about gradients
    opt = make_optimizer(model, 1.0, 0.0, kind="sgd")
    m = grpo_update(model, opt, batch, adv, torch.ones(len(idx), dtype=torch.bool), None, ref_lp, cfg, 0, None,
                    wrap(model, parallel))
    return model_state(model), all_reduce_mean({"loss": m["loss"], "kl": m["kl"]})


def _grpo_worker(rank, world, model_dir, init_file, out_file, parallel="ddp"):
    _init(rank, world, init_file)
    params, m = _grpo_run(model_dir, list(range(rank, 8, world)), parallel)
    if rank == 0:
        torch.save({"params": params, "metrics": m}, out_file)
    shutdown()


def _sft_pairs():
    names = ["Ana", "Bo", "Mo", "Kai", "Lia", "Sam", "Uma", "Zed"]
    return [{"prompt": f"User: Say hello to {n}.\nAssistant:", "response": f"<think>\n</think>\nHello, {n}!"} for n in names]


def _sft_run(model_dir, out_dir, parallel="ddp", lora=()):
    from transformers import AutoTokenizer, LlamaForCausalLM

    from r1lab.runtime.fsdp import model_state
    from r1lab.train.sft import SFTConfig, sft

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = LlamaForCausalLM.from_pretrained(model_dir)
    cfg = SFTConfig(epochs=2, batch_size=4, lr=1.0, warmup=1, precision="fp32", optimizer="sgd", parallel=parallel,
                    checkpoint_every=1)
    if lora:
        from r1lab.models.lora import LoraSettings

        cfg.lora = LoraSettings(*lora)
    info = sft(cfg, model, tok, _sft_pairs(), out_dir)
    return model_state(model), info


def _sft_worker(rank, world, model_dir, init_file, out_file, out_dir, parallel="ddp", lora=()):
    _init(rank, world, init_file)
    params, info = _sft_run(model_dir, out_dir, parallel, lora)
    if rank == 0:
        torch.save({"params": params, "loss": info["final_loss"]}, out_file)
    shutdown()


def _close(a, b):
    return all(torch.allclose(a[k], b[k], atol=1e-6, rtol=1e-5) for k in a)



@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_process_grpo_update_equals_one_process(tmp_path, tiny_model_dir, parallel):
    torch.set_num_threads(1)
    single, m1 = _grpo_run(str(tiny_model_dir), list(range(8)))
    out = tmp_path / "two.pt"
    mp.spawn(_grpo_worker, args=(2, str(tiny_model_dir), str(tmp_path / "init"), str(out), parallel), nprocs=2,
             join=True)
    res = torch.load(out, weights_only=False)
    assert res["metrics"]["loss"] == pytest.approx(m1["loss"], rel=1e-5, abs=1e-7)
    assert res["metrics"]["kl"] == pytest.approx(m1["kl"], rel=1e-5)
    assert res["params"].keys() == single.keys() and _close(single, res["params"])  # full (gathered) weights
    init = __import__("transformers").LlamaForCausalLM.from_pretrained(str(tiny_model_dir)).state_dict()
    assert max((init[k] - res["params"][k]).abs().max() for k in init) > 1e-3  # the update did move the weights


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_process_sft_equals_one_process(tmp_path, tiny_model_dir, parallel):
    """Also: the checkpoints (every step) and the saved model hold full weights, written by rank 0."""
    from transformers import LlamaForCausalLM

    torch.set_num_threads(1)
    single, info = _sft_run(str(tiny_model_dir), tmp_path / "one")
    out = tmp_path / "two.pt"
    mp.spawn(_sft_worker, args=(2, str(tiny_model_dir), str(tmp_path / "init"), str(out), str(tmp_path / "two"),
                                parallel), nprocs=2, join=True)
    res = torch.load(out, weights_only=False)
    assert res["loss"] == pytest.approx(info["final_loss"], rel=1e-5)
    assert _close(single, res["params"])
    saved = LlamaForCausalLM.from_pretrained(str(tmp_path / "two" / "model")).state_dict()
    assert _close(single, {k: saved[k] for k in single})
    ckpt = torch.load(next((tmp_path / "two" / "checkpoints").glob("step_*/state.pt")), weights_only=False)
    assert all(ckpt["model"][k].shape == single[k].shape for k in single)


def test_two_process_lora_sft_equals_one_process(tmp_path, tiny_model_dir):
    """LoRA under DDP: the adapter's gradients are all-reduced (the frozen base is not), the merged result equals
    one process's, and rank 0 writes model/ and model_adapter/."""
    torch.set_num_threads(1)
    single, info = _sft_run(str(tiny_model_dir), tmp_path / "one", lora=(4,))
    out = tmp_path / "two.pt"
    mp.spawn(_sft_worker, args=(2, str(tiny_model_dir), str(tmp_path / "init"), str(out), str(tmp_path / "two"),
                                "ddp", (4,)), nprocs=2, join=True)
    res = torch.load(out, weights_only=False)
    assert res["loss"] == pytest.approx(info["final_loss"], rel=1e-5)
    assert res["params"].keys() == single.keys() and _close(single, res["params"])  # merged: plain weights
    init = __import__("transformers").LlamaForCausalLM.from_pretrained(str(tiny_model_dir)).state_dict()
    assert max((init[k] - single[k]).abs().max() for k in init) > 1e-3
    assert (tmp_path / "two" / "model_adapter" / "adapter_config.json").is_file()


@pytest.mark.parametrize("parallel,extra", [("ddp", []), ("fsdp", []), ("ddp", ["lora.r=4"])])
def test_torchrun_cli_grpo_two_ranks_exits_cleanly(tmp_path, tiny_model_dir, parallel, extra):
    """The user's command under torchrun: both ranks finish, exit 0 (no abort at teardown), one model written
    (full weights, loadable); with FSDP the sampler generates from the gathered weights; with LoRA the
    reference is the adapter-disabled policy and model_adapter/ is written too."""
    import subprocess
    import sys

    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "R1LAB_THREADS")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "r1lab", "grpo",
           "--model", str(tiny_model_dir), "--out", str(out), "steps=2", "prompts_per_step=2", "group_size=2",
           "max_new_tokens=8", "preflight=false", "eval_every=0", "micro_batch_size=2", f"parallel={parallel}",
           "kl_coef=0.01", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the launcher and both ranks
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    assert "terminate called" not in stderr
    assert (out / "model" / "config.json").is_file()
    metrics = [line for line in (out / "metrics.jsonl").read_text().splitlines() if '"step"' in line]
    assert len(metrics) >= 2
    from transformers import LlamaForCausalLM

    init = LlamaForCausalLM.from_pretrained(str(tiny_model_dir)).state_dict()
    trained = LlamaForCausalLM.from_pretrained(str(out / "model")).state_dict()
    assert init.keys() == trained.keys() and all(init[k].shape == trained[k].shape for k in init)
    assert (out / "model_adapter" / "adapter_config.json").is_file() == bool(extra)


def test_threads_are_shared_between_local_ranks(monkeypatch):
    from r1lab.runtime import setup_threads

    before = torch.get_num_threads()
    try:
        for var in ("R1LAB_THREADS", "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
            monkeypatch.delenv(var, raising=False)
        cores = len(os.sched_getaffinity(0))
        setup_threads()
        assert torch.get_num_threads() == cores
        monkeypatch.setenv("LOCAL_WORLD_SIZE", str(cores))  # one rank per core: one thread each
        setup_threads()
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "3")  # an explicit setting wins over the share
        setup_threads()
        assert torch.get_num_threads() == 3
        monkeypatch.setenv("R1LAB_THREADS", "2")
        setup_threads()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _fsdp_resume_worker(rank, world, model_dir, init_file, base):
    """GRPO under FSDP: 2 steps (a full-state checkpoint after step 1), then the same run extended to 3 steps
    resumes from it; a fresh 3-step run in another directory is the reference."""
    from pathlib import Path

    from r1lab.train.grpo import GRPOConfig
    from r1lab.train.grpo_run import run_grpo

    _init(rank, world, init_file)
    # the language reward varies over a random model's samples: a learning signal
    cfg = dict(prompts_per_step=2, group_size=4, max_new_tokens=12, preflight=False, eval_every=0, micro_batch_size=2,
               parallel="fsdp", kl_coef=0.01, checkpoint_every=1, lr=1e-2, precision="fp32", device="cpu",
               rewards={"language": 1.0})
    base = Path(base)
    run_grpo(GRPOConfig(steps=2, **cfg), model_dir, base / "resumed")
    info = run_grpo(GRPOConfig(steps=3, **cfg), model_dir, base / "resumed")
    assert info["resumed_from"] == 1, info["resumed_from"]
    run_grpo(GRPOConfig(steps=3, **cfg), model_dir, base / "straight")
    shutdown()


def test_fsdp_checkpoints_resume_to_the_same_weights(tmp_path, tiny_model_dir):
    from transformers import LlamaForCausalLM

    mp.spawn(_fsdp_resume_worker, args=(2, str(tiny_model_dir), str(tmp_path / "init"), str(tmp_path)), nprocs=2,
             join=True)
    state = torch.load(next((tmp_path / "resumed" / "checkpoints").glob("step_*/state.pt")), weights_only=False)
    init = LlamaForCausalLM.from_pretrained(str(tiny_model_dir)).state_dict()
    for part in ("model", "ref_model"):  # full, unsharded tensors
        assert all(state[part][k].shape == init[k].shape for k in init)
    a = LlamaForCausalLM.from_pretrained(str(tmp_path / "resumed" / "model")).state_dict()
    b = LlamaForCausalLM.from_pretrained(str(tmp_path / "straight" / "model")).state_dict()
    assert _close(a, b)
    assert max((init[k] - a[k]).abs().max() for k in init) > 1e-4
