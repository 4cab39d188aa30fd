"""A small sp1024 export made locally, for the `cpu` fidelity (evaluator-owned, host).

Upstream's own exporter (`data/download_hf_docs_and_tokenize.py` at the
pinned commit, from the recipe cache) does the work on a documents file made
here instead of the one it downloads: `build_tokenizers` trains the
SentencePiece BPE tokenizer of `data/tokenizer_specs.json` (sp_bpe_1024:
`tokenizers/fineweb_1024_bpe.model`) and `export_shards` writes
`datasets/fineweb10B_sp1024/fineweb_{val,train}_NNNNNN.bin` in its binary format
(256 x int32 header: magic 20240520, version 1, token count; then uint16
tokens; every document starts with BOS; the first documents are the
validation split). Only `main()`, which downloads, is not run.

The documents are sentences of pseudo-words with Zipf-like frequencies, a
grammar a tiny model can partly learn, varied enough for 1024 BPE pieces.
One seeded generator: the same bytes every time.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path

SEED = 16_000_000
EXPORTER = "data/download_hf_docs_and_tokenize.py"
SPECS = "data/tokenizer_specs.json"
DOCS = 3600
VAL_DOCS = 1200
"""About 90,000 validation tokens: some 90 held-out targets (prepare.py keeps one per 1,025)."""
SHARD_TOKENS = 60_000
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def documents(rng: random.Random) -> list[str]:
    nouns, verbs, adjectives = vocabulary(rng, 900), vocabulary(rng, 300), vocabulary(rng, 200)
    weights = [1.0 / (rank + 1) for rank in range(len(nouns))]
    docs = []
    for _ in range(DOCS):
        sentences = []
        for _ in range(rng.randint(3, 9)):
            subject, obj = rng.choices(nouns, weights, k=2)
            verb = verbs[(nouns.index(subject) * 7) % len(verbs)]  # each subject has its verb
            sentences.append(f"The {rng.choice(adjectives)} {subject} {verb}s {obj} {rng.randint(1, 99)} times.")
        docs.append(" ".join(sentences))
    return docs


def load_exporter(checkout: Path):
    path = checkout / EXPORTER
    spec = importlib.util.spec_from_file_location("parameter_golf_exporter", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise ValueError(f"upstream's {EXPORTER} needs {exc.name} on the host (pip install 'harness[upstream]')") from None
    finally:
        sys.modules.pop(spec.name, None)
    return module


def make_export(root: Path, checkout: Path) -> Path:
    """Write `root/tokenizers/` and `root/datasets/fineweb10B_sp1024/` with upstream's exporter."""
    exporter = load_exporter(checkout)
    root.mkdir(parents=True, exist_ok=True)
    docs_jsonl = root / "docs_selected.jsonl"
    texts = documents(random.Random(SEED))
    docs_jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    specs = json.loads((checkout / SPECS).read_text(encoding="utf-8"))["tokenizers"]
    sentencepiece = [s for s in specs if s.get("dataset_suffix") == "sp1024"]
    if not sentencepiece:
        raise ValueError(f"upstream's {SPECS} has no sp1024 tokenizer")
    tokenizers, _ = exporter.build_tokenizers(specs=sentencepiece, docs_jsonl=docs_jsonl,
                                              tokenizers_dir=root / "tokenizers", tokenizer_train_docs=None,
                                              skip_byte=True, reuse_sp_models={})
    for tok in tokenizers:
        exporter.export_shards(docs_jsonl, tok, root / "datasets" / tok["dataset_name"], num_val_docs=VAL_DOCS,
                               shard_size=SHARD_TOKENS, docs_total=len(texts))
    return root
