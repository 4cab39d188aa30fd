"""The nanochat-d12 evaluator on a CPU: no CORE answer enters the eval phase.

The eval phase runs trial code (the trial's `nanochat/gpt.py`), so it gets the
CORE items rendered without their answers, and few-shot demonstrations come
from items that are never scored (upstream draws them from the scored items,
answers included). The host judges the predictions. Rendering uses upstream's
`core_eval.py` from the pinned commit, read from the shared upstream bundle
(`../shared/data/upstream/`, README there); the tests that need it are skipped
where that bundle is absent.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.recipe_loader import RECIPES_ROOT

torch = pytest.importorskip("torch")

BUNDLE = RECIPES_ROOT.parent.parent / "shared" / "data" / "upstream" / "karpathy+nanochat.bundle"


def module(file: str):
    path = RECIPES_ROOT / "nanochat-d12" / "eval" / file
    spec = importlib.util.spec_from_file_location(f"nc_{path.stem}", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    if not BUNDLE.is_file():
        pytest.skip(f"no upstream bundle at {BUNDLE}")
    dest = tmp_path_factory.mktemp("nanochat") / "nanochat"
    commit = module("prepare.py").UPSTREAM_COMMIT
    subprocess.run(["git", "clone", "-q", str(BUNDLE), str(dest)], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(dest), "-c", "advice.detachedHead=false", "checkout", "-q", commit], check=True)
    return dest


@pytest.fixture(scope="module")
def core_eval(checkout):
    sys.modules.setdefault("torch.distributed", torch.distributed)
    spec = importlib.util.spec_from_file_location("pristine_core_eval_test", checkout / "nanochat" / "core_eval.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def fake_bundle(root: Path) -> Path:
    """A CORE bundle of three tasks (MC 3-shot, schema 0-shot, LM 2-shot) with unique answer texts."""
    bundle = root / "eval_bundle"
    (bundle / "eval_data").mkdir(parents=True)
    mc = [{"query": f"Question {k}?", "choices": [f"answer-{k}-{c}" for c in "abcd"], "gold": k % 4} for k in range(40)]
    schema = [{"context_options": [f"Option {k} {c}." for c in "ab"], "continuation": f"then {k}", "gold": k % 2}
              for k in range(30)]
    lm = [{"context": f"Count to {k}:", "continuation": f"secret-{k:03d}"} for k in range(50)]
    for name, rows in (("mc.jsonl", mc), ("schema.jsonl", schema), ("lm.jsonl", lm)):
        (bundle / "eval_data" / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (bundle / "core.yaml").write_text(
        "icl_tasks:\n"
        "  - {label: mc, dataset_uri: mc.jsonl, num_fewshot: [3], icl_task_type: multiple_choice}\n"
        "  - {label: schema, dataset_uri: schema.jsonl, num_fewshot: [0], icl_task_type: schema}\n"
        "  - {label: lm, dataset_uri: lm.jsonl, num_fewshot: [2], icl_task_type: language_modeling}\n")
    (bundle / "eval_meta_data.csv").write_text("Eval Task,Random baseline\nmc,25\nschema,50\nlm,0\n")
    return bundle


@pytest.fixture
def prepared(tmp_path, monkeypatch, checkout):
    """prepare() on a fake nanochat base folder, the pinned upstream checkout standing in for the cache."""
    prepare = module("prepare.py")
    root = tmp_path / "base"
    (root / "base_data_climbmix").mkdir(parents=True)
    for k in range(3):
        (root / "base_data_climbmix" / f"shard_{k:05d}.parquet").write_bytes(b"parquet")
    (root / "tokenizer").mkdir()
    for name in ("tokenizer.pkl", "token_bytes.pt"):
        (root / "tokenizer" / name).write_bytes(b"tok")
    fake_bundle(root)
    monkeypatch.setenv(prepare.DATA_ENV, str(root))
    monkeypatch.setenv(prepare.MAX_PER_TASK_ENV, "20")
    import harness.recipe_loader

    monkeypatch.setattr(harness.recipe_loader, "git_checkout", lambda url, commit: checkout)
    dirs = [tmp_path / d for d in ("train", "inputs", "labels")]
    prepare.prepare(*dirs)
    return dirs


def test_the_eval_phase_gets_no_bundle_no_validation_shard_and_no_answer(prepared):
    train, inputs, labels = prepared
    shown = sorted(p.relative_to(inputs).as_posix() for p in inputs.rglob("*") if p.is_file())
    assert shown == ["core_items.jsonl", "core_tasks.json", "pristine/core_eval.py",
                     "tokenizer/token_bytes.pt", "tokenizer/tokenizer.pkl"]
    assert not (train / "base_data_climbmix" / "shard_00002.parquet").exists()  # the validation shard
    text = (inputs / "core_items.jsonl").read_text()
    assert '"gold"' not in text and '"continuation"' not in text
    answers = [json.loads(line) for line in (labels / "core_answers.jsonl").read_text().splitlines()]
    for answer in answers:
        if "continuation" in answer:
            assert answer["continuation"].strip() not in text, answer
    tasks = json.loads((inputs / "core_tasks.json").read_text())
    assert [(t["label"], t["items"]) for t in tasks] == [("mc", 20), ("schema", 20), ("lm", 20)]


def test_few_shot_demonstrations_come_from_items_that_are_never_scored(prepared):
    _train, inputs, labels = prepared
    items = [json.loads(line) for line in (inputs / "core_items.jsonl").read_text().splitlines()]
    mc = [item for item in items if item["task"] == "mc"]
    scored_questions = {item["prompts"][0].rsplit("\n\n", 1)[-1].split("?")[0] for item in mc}
    for item in mc:
        demonstrations = item["prompts"][0].split("\n\n")[:-1]
        assert len(demonstrations) == 3
        for shown in demonstrations:
            assert shown.split("?")[0] not in scored_questions  # its answer is shown: never a scored item
    lm = [item for item in items if item["task"] == "lm"]
    answers = {a["i"]: a["continuation"] for a in map(json.loads, (labels / "core_answers.jsonl").read_text()
                                                       .splitlines()) if a["task"] == "lm"}
    assert all(item["target_chars"] == len(answers[item["i"]]) for item in lm)


def write_preds(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "core_preds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def perfect_preds(labels: Path) -> list[dict]:
    rows = []
    for answer in map(json.loads, (labels / "core_answers.jsonl").read_text().splitlines()):
        key = {"task": answer["task"], "i": answer["i"]}
        if "continuation" in answer:
            rows.append({**key, "text": answer["continuation"] + " and more"})
        else:
            losses = [2.0, 2.0, 2.0, 2.0] if answer["task"] == "mc" else [2.0, 2.0]
            losses[answer["gold"]] = 1.0
            rows.append({**key, "losses": losses})
    return rows


def test_score_judges_each_item_against_its_answer_on_the_host(prepared, tmp_path):
    _train, _inputs, labels = prepared
    score = module("score.py")
    rows = perfect_preds(labels)
    write_preds(tmp_path / "p", rows)
    assert score.score(tmp_path / "p", labels) == {"core": pytest.approx(1.0), "core_items": 60.0}
    wrong = [dict(r, text="nope") if "text" in r else r for r in rows]  # every LM item wrong: acc 0, baseline 0
    write_preds(tmp_path / "q", wrong)
    assert score.score(tmp_path / "q", labels)["core"] == pytest.approx(2 / 3)
    smoke = [r for r in rows if r["i"] < 5]  # a smaller cap for every task (the smoke level's)
    write_preds(tmp_path / "s", smoke)
    assert score.score(tmp_path / "s", labels)["core_items"] == 15.0


@pytest.mark.parametrize("change, message", [
    (lambda rows: [r for r in rows if not (r["task"] == "mc" and r["i"] == 3)], "not for its first"),
    (lambda rows: [r for r in rows if r["task"] != "lm"], "no prediction for CORE task 'lm'"),
    (lambda rows: [dict(r, losses=[float("nan")] * len(r["losses"])) if "losses" in r else r for r in rows],
     "finite mean loss"),
    (lambda rows: rows + [{"task": "mc", "i": 99, "losses": [1.0]}], "not CORE items"),
])
def test_score_refuses_incomplete_or_malformed_predictions(prepared, tmp_path, change, message):
    _train, _inputs, labels = prepared
    write_preds(tmp_path / "p", change(perfect_preds(labels)))
    with pytest.raises(ValueError, match=message):
        module("score.py").score(tmp_path / "p", labels)


class CharTokenizer:
    """Characters as token ids (BOS = 0), with upstream's call and decode interface."""

    def get_bos_token_id(self) -> int:
        return 0

    def __call__(self, text, prepend=None):
        if isinstance(text, list):
            return [self(t, prepend) for t in text]
        return ([prepend] if prepend is not None else []) + [ord(c) for c in text]

    def decode(self, ids) -> str:
        return "".join(chr(i) for i in ids)


class EchoModel(torch.nn.Module):
    """Predicts the character after each input character from a fixed next-character table."""

    def __init__(self, following: dict[str, str]) -> None:
        super().__init__()
        self.following = following

    def forward(self, ids):
        logits = torch.full((*ids.shape, 256), -10.0)
        for b in range(ids.shape[0]):
            for t in range(ids.shape[1]):
                logits[b, t, ord(self.following.get(chr(int(ids[b, t])), "?"))] = 10.0
        return logits


def test_predict_continues_greedily_to_the_continuation_length_and_scores_choices(core_eval):
    predict = module("predict.py")
    model, tokenizer = EchoModel({":": " ", " ": "a", "a": "b", "b": "c"}), CharTokenizer()
    text = predict.greedy_text(model, tokenizer, {"prompt": "Say:", "target_chars": 3}, "cpu", torch)
    assert text == " ab"
    losses = predict.choice_losses(model, tokenizer, core_eval,
                                   {"type": "multiple_choice", "prompts": ["Q: ab", "Q: xy"]}, "cpu")
    assert len(losses) == 2 and losses[0] < losses[1]  # "ab" is what the model expects after "Q: "
