"""End to end through the CLI: default run, scripted labels, replay verification, bad input."""

from __future__ import annotations

import json
import re

from conftest import EXPECTED_LABELS, git, harness, replay_json


def test_default_run_records_and_verifies(tmp_path):
    result = harness("run", "--trials", "3", "--fidelity", "smoke", "--out", tmp_path, "--run-id", "d")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Run summary" in result.stdout and "t0003" in result.stdout
    code, report = replay_json(tmp_path / "d")
    assert code == 0 and report["verified"], report["problems"]
    assert report["recipe"] == "collision"
    assert [t["id"] for t in report["trials"]] == ["t0000", "t0001", "t0002", "t0003"]
    assert all(t["agent"] == "random" for t in report["trials"][1:])
    assert report["trials"][0]["label"] == "keep" and report["trials"][0]["score"] > 0
    best = report["best"]["id"]
    kept = [t for t in report["trials"] if t["label"] == "keep"]
    assert best == kept[-1]["id"] and report["best"]["score"] == kept[-1]["score"]


def test_a_run_joins_the_run_registry_and_an_unwritable_registry_only_warns(tmp_path, monkeypatch):
    from harness.run_registry import registered_runs

    result = harness("run", "--trials", "0", "--fidelity", "smoke", "--out", tmp_path, "--run-id", "known")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "known").resolve() in registered_runs()

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HARNESS_STATE_DIR", str(blocker / "state"))
    result = harness("run", "--trials", "0", "--fidelity", "smoke", "--out", tmp_path, "--run-id", "unknown")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"warning: cannot record this run in {blocker / 'state' / 'runs'}" in " ".join(output.split())
    assert replay_json(tmp_path / "unknown")[0] == 0


def test_bayes_agent_run_verifies(tmp_path):
    result = harness("run", "--agent", "bayes", "--trials", "2", "--fidelity", "smoke",
                     "--out", tmp_path, "--run-id", "b")
    assert result.returncode == 0, result.stdout + result.stderr
    code, report = replay_json(tmp_path / "b")
    assert code == 0, report["problems"]
    assert [t["agent"] for t in report["trials"]] == ["baseline", "bayes", "bayes"]


def test_scripted_proposals_get_the_right_labels_in_order(scripted_run):
    code, report = replay_json(scripted_run)
    assert code == 0, report["problems"]
    assert [t["label"] for t in report["trials"]] == EXPECTED_LABELS
    hypotheses = [t["hypothesis"] for t in report["trials"][1:]]
    assert hypotheses[0].startswith("V-JEPA") and hypotheses[-1].startswith("A diff against")
    improvement = report["trials"][1]
    assert improvement["score"] > report["trials"][0]["score"] and report["best"]["id"] == "t0001"
    assert all(t["score"] is None for t in report["trials"][2:])


def test_show_prints_hypothesis_diff_and_failure(scripted_run):
    shown = harness("show", scripted_run, "t0002")
    assert shown.returncode == 0
    assert "Crash on purpose" in shown.stdout and "+raise RuntimeError('boom')" in shown.stdout
    assert "crash" in shown.stdout and "RuntimeError: boom" in shown.stdout
    # One trial at a time: its proposal was prepared once both trials before it were recorded.
    assert re.search(r"^prepared on ledger [0-9a-f]{12}: 2 trials, 2 outcomes$", shown.stdout, re.M), shown.stdout
    illegal = harness("show", scripted_run, "t0004").stdout
    assert "illegal_edit" in illegal and "data.py" in illegal


def test_failed_trials_are_explained(scripted_run):
    shown = harness("show", scripted_run, "t0003").stdout
    assert "budget_overrun" in shown and "25" in shown
    assert "does not apply" in harness("show", scripted_run, "t0005").stdout


def test_resume_continues_a_finished_run(run_copy):
    result = harness("run", "--resume", run_copy, "--agent", "random", "--trials", "1", "--fidelity", "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    code, report = replay_json(run_copy)
    assert code == 0, report["problems"]
    assert len(report["trials"]) == len(EXPECTED_LABELS) + 1
    assert report["trials"][-1]["agent"] == "random"


def test_bad_proposals_file_is_reported_without_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hypothesis": "ok", "diff": "x"}\nnot json\n')
    result = harness("run", "--agent", "scripted", "--proposals", bad, "--out", tmp_path)
    assert result.returncode == 2
    assert "bad.jsonl:2" in result.stderr and "Traceback" not in result.stderr
    assert not any((tmp_path).glob("collision-*")), "no run directory is created for bad input"


def test_unknown_recipe_and_agent_are_clear_errors(tmp_path):
    result = harness("run", "no-such-recipe", "--out", tmp_path)
    assert result.returncode == 2 and "no recipe named" in result.stderr and "Traceback" not in result.stderr
    result = harness("run", "--agent", "oracle", "--out", tmp_path)
    assert result.returncode == 2 and "oracle" in result.stderr and "random" in result.stderr


def test_replay_of_a_folder_that_is_not_a_run(tmp_path):
    result = harness("replay", tmp_path, "--json")
    assert result.returncode == 2 and "not a run" in result.stderr and "Traceback" not in result.stderr


def test_replay_json_shape(scripted_run):
    result = harness("replay", scripted_run, "--json")
    data = json.loads(result.stdout)
    assert set(data) == {"run", "recipe", "verified", "problems", "best", "trials"}
    assert set(data["best"]) == {"id", "score"}
    assert set(data["trials"][0]) == {"id", "parent", "agent", "specialist", "hypothesis", "status",
                                      "label", "score", "metrics"}


def test_run_with_a_relative_out_folder(tmp_path):
    result = harness("run", "--trials", "1", "--fidelity", "smoke", "--run-id", "rel", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert harness("replay", "runs/rel", "--verify", cwd=tmp_path).returncode == 0


def test_parallel_run_verifies(tmp_path):
    result = harness("run", "--trials", "4", "--parallel", "2", "--proposers", "3", "--fidelity", "smoke",
                     "--out", tmp_path, "--run-id", "p")
    assert result.returncode == 0, result.stdout + result.stderr
    code, report = replay_json(tmp_path / "p")
    assert code == 0, report["problems"]
    assert len(report["trials"]) == 5


def test_gpus_that_do_not_split_are_a_usage_error(tmp_path):
    result = harness("run", "--parallel", "2", "--gpus", "0,1,2", "--gpus-per-trial", "2", "--out", tmp_path)
    assert result.returncode == 2 and "do not split" in (result.stdout + result.stderr)


def test_rerun_best_reproduces_and_leaves_history_alone(run_copy):
    ledger_before = git(run_copy, "rev-parse", "ledger")
    result = harness("replay", run_copy, "--rerun", "best")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rerun t0001: reproduced" in result.stdout
    assert git(run_copy, "rev-parse", "ledger") == ledger_before
    assert "1/1 reproduced" in git(run_copy, "log", "--format=%s", "replays")
    code, report = replay_json(run_copy)
    assert code == 0, report["problems"]


def test_rerun_of_an_unknown_trial_is_a_clear_error(scripted_run):
    result = harness("replay", scripted_run, "--rerun", "t0999")
    assert result.returncode == 2 and "no such trial" in result.stderr
