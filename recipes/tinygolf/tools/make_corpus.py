"""Write the tinygolf corpus: fables from the tinychat recipe's grammar, another seed.

    python tools/make_corpus.py [OUT]

Same generator as recipes/tinychat/tools/make_corpus.py (public domain, CC0
1.0: every word list and template was written for these recipes), a
different seed and size, so the two twins do not share a text. The recipe
ships the output as eval/corpus.txt; tests check it matches.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SEED = 2718
BYTES = 240_000
GENERATOR = Path(__file__).resolve().parents[2] / "tinychat" / "tools" / "make_corpus.py"


def generate() -> str:
    spec = importlib.util.spec_from_file_location("tinychat_make_corpus", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate(BYTES, SEED)


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "eval" / "corpus.txt"
    text = generate()
    out.write_text(text, encoding="ascii", newline="\n")
    print(f"wrote {len(text)} bytes to {out}")
