"""What a git recipe relies on in its upstream, checked against the pinned tree.

A recipe whose source is an upstream repository names, in `upstream.toml`
beside its `recipe.toml`, every path, flag, environment variable, function and
output line that its drivers and evaluator rely on::

    [[needs]]
    path = "scripts/base_train.py"
    mentions = ['"--depth"', '"--model-tag"']
    why = "flags the train driver passes"

`harness recipe check` reads it (`upstream` item) and verifies, in the
materialized checkout at the pin, that each path exists (a file, or a folder
when it ends in `/`) and that each `mentions` string occurs in that file. A
miss names the upstream, the commit, the path and the missing string, with the
`why`: a renamed flag or a moved file shows up here, not on the first GPU run.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field, ValidationError

from harness.types import Frozen

CONTRACT_FILE = "upstream.toml"


class UpstreamNeed(Frozen):
    path: str = Field(min_length=1)
    """File (or folder, ending in `/`) of the upstream tree, relative to the source root."""
    mentions: list[str] = Field(default_factory=list)
    """Strings the file must contain: a flag's declaration, an environment variable's
    name, a function's signature, the text of an output line."""
    why: str = Field(min_length=1)
    """What of the recipe relies on it (named in the message when it is missing)."""


class UpstreamContract(Frozen):
    needs: list[UpstreamNeed] = Field(min_length=1)
    """Everything the recipe relies on in its upstream."""


class ContractError(Exception):
    """`upstream.toml` cannot be read or does not validate; the message says where."""


def load_contract(recipe_folder: Path) -> UpstreamContract | None:
    """The recipe's upstream contract, or None when it has no `upstream.toml`."""
    path = Path(recipe_folder) / CONTRACT_FILE
    if not path.is_file():
        return None
    try:
        return UpstreamContract.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise ContractError(f"{path}: {fields}") from None


def contract_problems(contract: UpstreamContract, source_dir: Path) -> list[str]:
    """What the tree at `source_dir` lacks, one line per missing path or string."""
    problems = []
    root = Path(source_dir).resolve()
    for need in contract.needs:
        target = (root / need.path).resolve()
        if root != target and root not in target.parents:
            problems.append(f"{need.path}: points outside the source tree")
            continue
        if need.path.endswith("/"):
            if not target.is_dir():
                problems.append(f"no folder {need.path} ({need.why})")
            continue
        if not target.is_file():
            problems.append(f"no file {need.path} ({need.why})")
            continue
        text = target.read_text(encoding="utf-8", errors="replace")
        missing = [m for m in need.mentions if m not in text]
        if missing:
            problems.append(f"{need.path} has no {', '.join(repr(m) for m in missing)} ({need.why})")
    return problems


def checked_count(contract: UpstreamContract) -> int:
    return sum(1 + len(need.mentions) for need in contract.needs)
