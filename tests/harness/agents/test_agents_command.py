"""The command agent: options, the brief, the work tree's diff, and what it refuses to trust."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.agents.base import AgentContext, AgentError, make_agent
from harness.agents.command.agent import CommandAgent
from harness.agents.command.brief import proposal_surface, render_brief
from harness.types import Specialist


def command_agent(tmp_path: Path, cmd: str, **options) -> CommandAgent:  # noqa: ANN003
    run_dir, evaluator = tmp_path / "run", tmp_path / "recipe" / "eval"
    for folder in (run_dir, evaluator):
        folder.mkdir(parents=True, exist_ok=True)
    return CommandAgent(agent_cmd=cmd, run_dir=run_dir, evaluator_dir=evaluator, **options)


def context(lineage, **kw) -> AgentContext:  # noqa: ANN003
    def export(tid: str, folder: Path) -> None:
        for name, text in lineage.files[tid].items():
            (folder / name).write_text(text)

    return lineage.ctx(**kw).model_copy(update={"export_files": export})


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"agent_cmd": None}, "needs --agent-cmd"),
        ({"agent_cmd": "  "}, "needs --agent-cmd"),
        ({"agent_timeout": 0}, "--agent-timeout must be > 0"),
        ({"agent_env": ["1BAD"]}, "is not an environment variable name"),
        ({"agent_env": ["HARNESS_BRIEF"]}, "the harness sets this variable itself"),
        ({"agent_env": ["SURELY_NOT_SET_ANYWHERE"]}, "not set in the harness's environment"),
    ],
)
def test_bad_options_are_named(tmp_path, options, needle):
    base = {"agent_cmd": "true", "run_dir": tmp_path, "evaluator_dir": tmp_path}
    with pytest.raises(AgentError, match=needle):
        make_agent("command", **{**base, **options})


def test_made_by_name(tmp_path):
    agent = make_agent("command", agent_cmd="true", run_dir=tmp_path, evaluator_dir=tmp_path)
    assert isinstance(agent, CommandAgent) and agent.name == "command"


def test_brief_carries_task_rules_lineage_specialty_and_knowledge(fk):
    lineage = fk.Lineage(fk.make_spec(specialists={"optim": Specialist(brief="Tune the optimiser.", files=["config.py"])}))
    ctx = lineage.ctx(specialist="optim").model_copy(update={"knowledge": {"lessons.md": "Warmup helps at high learning rates.\n"}})
    brief = render_brief(ctx, proposal_surface(ctx), timeout_s=90)
    for part in ("# Brief for trial t0001 for the specialty 'optim'", "## Your task", "runs past 90 s",
                 "`$HARNESS_HYPOTHESIS`", "Score: `acc`, to maximize", "## Budgets", "You may edit only config.py",
                 "## Your specialty: optim", "Tune the optimiser.", "## Recipe knowledge: knowledge/lessons.md",
                 "Warmup helps at high learning rates.", "# Lineage: 1 trials so far"):
        assert part in brief, part


def test_proposal_is_the_work_tree_diff_with_new_files(tmp_path, lineage, fk):
    cmd = ("sed -i 's/^BATCH = 64/BATCH = 128/' config.py && printf 'X = 1\\n' > extra.py && "
           "git add -A && git -c user.name=a -c user.email=a@b commit -qm mine && "  # its own commits do not hide edits
           "echo 'Bigger batches.' > \"$HARNESS_HYPOTHESIS\"")
    proposal = command_agent(tmp_path, cmd).propose(context(lineage))
    assert proposal.failure is None, proposal.failure_reason
    assert proposal.hypothesis == "Bigger batches." and proposal.agent == "command" and proposal.parent == "t0000"
    after = fk.git_apply(tmp_path / "apply", lineage.files["t0000"], proposal.diff)
    assert "BATCH = 128" in after["config.py"] and (tmp_path / "apply" / "extra.py").read_text() == "X = 1\n"
    assert proposal.transcript is not None and proposal.transcript.format == "text"


def test_the_command_cannot_steer_the_harness_diff(tmp_path, lineage):
    """Its repository's config (an external diff driver, attributes hiding a file) is never used."""
    cmd = ("git config diff.external /bin/false && printf '* -diff\\n' > .git/info/attributes && "
           "git config core.excludesFile /dev/null && printf 'config.py\\n' > .git/info/exclude && "
           "echo 'Y = 2' >> config.py && echo 'Steer the diff.' > \"$HARNESS_HYPOTHESIS\"")
    proposal = command_agent(tmp_path, cmd).propose(context(lineage))
    assert proposal.failure is None, proposal.failure_reason
    assert "+Y = 2" in proposal.diff and "Binary files" not in proposal.diff


def test_hypothesis_link_is_not_followed_and_secrets_are_blanked(tmp_path, lineage, monkeypatch):
    monkeypatch.setenv("MY_KEY", "secret-value-1234")
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host secret\n")
    cmd = (f"ln -s {secret} \"$HARNESS_HYPOTHESIS\"; echo 'Z = 3' >> config.py; echo \"key=$MY_KEY\"")
    proposal = command_agent(tmp_path, cmd, agent_env=["MY_KEY"]).propose(context(lineage))
    assert proposal.failure == "malformed_proposal"
    assert "wrote no hypothesis" in proposal.failure_reason
    assert "host secret" not in proposal.hypothesis
    assert proposal.transcript is not None and b"key=[MY_KEY]" in proposal.transcript.content
    assert b"secret-value-1234" not in proposal.transcript.content and "secret-value-1234" not in proposal.failure_reason


def test_nested_repository_shows_as_a_gitlink(tmp_path, lineage):
    """A `.git` folder the command makes is not followed into: it shows as a gitlink the legality check refuses."""
    from evaluators.legality import check_diff

    cmd = ("mkdir sub && cd sub && git init -q && echo x > f && git add f && "
           "git -c user.name=a -c user.email=a@b commit -qm x && cd .. && echo 'Nest a repository.' > \"$HARNESS_HYPOTHESIS\"")
    proposal = command_agent(tmp_path, cmd).propose(context(lineage))
    assert proposal.failure is None, proposal.failure_reason
    assert "160000" in proposal.diff
    assert check_diff(proposal.diff, lineage.spec, {}).label is not None


def test_scratch_folder_is_removed(tmp_path, lineage, monkeypatch):
    import tempfile

    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    cmd = "chmod -R a-w . ; echo 'Read-only leftovers.' > \"$HARNESS_HYPOTHESIS\""
    command_agent(tmp_path, cmd).propose(context(lineage))
    assert [p.name for p in scratch_root.iterdir() if p.name.startswith("harness-agent-")] == []


def test_credentials_in_the_users_home_are_hidden(tmp_path, lineage, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (home / ".netrc").write_text("machine api login me password hunter2\n")
    (home / "notes.txt").write_text("not a secret\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("REAL_HOME", str(home))
    cmd = ('for f in .ssh/id_ed25519 .netrc notes.txt; do if [ -s "$REAL_HOME/$f" ]; then cat "$REAL_HOME/$f"; '
           'else echo "HIDDEN $f"; fi; done; '
           "echo 'W = 1' >> config.py; echo 'Look around the home.' > \"$HARNESS_HYPOTHESIS\"")
    proposal = command_agent(tmp_path, cmd, agent_env=["REAL_HOME"]).propose(context(lineage))
    assert proposal.transcript is not None
    out = proposal.transcript.content.decode()
    if not command_agent(tmp_path, "true").sandbox.mount_isolated:
        pytest.skip("no mount jail here")
    assert "HIDDEN .ssh/id_ed25519" in out and "HIDDEN .netrc" in out and "PRIVATE KEY" not in out
    assert "hunter2" not in out and "not a secret" in out


TEAM = """
[specialists.conf]
provider = "command"
command = "echo 'Z = 9' >> config.py; echo \\"conf $HARNESS_TRIAL\\" > \\"$HARNESS_HYPOTHESIS\\""
timeout_s = 30
focus.files = ["config.py"]

[specialists.net]
provider = "command"
command = "echo 'Z = 9' >> config.py; echo 'Out of my lane.' > \\"$HARNESS_HYPOTHESIS\\""
focus.files = ["model.py"]
focus.brief = "The network."
"""


def test_team_members_of_type_command_keep_to_their_focus(tmp_path, lineage):
    team_file = tmp_path / "team.toml"
    team_file.write_text(TEAM)
    run_dir, evaluator = tmp_path / "run", tmp_path / "eval"
    agent = make_agent("team", team_file=team_file, run_dir=run_dir, evaluator_dir=evaluator,
                       cache_dir=tmp_path / "cache", model=None)
    assert agent.specialists == ("conf", "net") and agent.priced
    assert agent.members["conf"].timeout_s == 30 and agent.members["net"].focus_brief == "The network."
    own = agent.propose(context(lineage, specialist="conf"))
    assert own.failure is None and own.hypothesis == "conf t0001" and own.specialist == "conf"
    foreign = agent.propose(context(lineage, specialist="net"))
    assert foreign.failure == "illegal_edit"
    assert "config.py is outside your specialty 'net', which may edit only model.py" in foreign.failure_reason


def test_team_command_member_is_validated(tmp_path):
    from harness.agents.llm.team import load_team

    bad = tmp_path / "team.toml"
    bad.write_text('[specialists.x]\nprovider = "command"\ntimeout_s = -1\n')
    with pytest.raises(AgentError) as info:
        load_team(bad)
    assert "specialists.x.command: Field required" in str(info.value)
    assert "specialists.x.timeout_s" in str(info.value)
