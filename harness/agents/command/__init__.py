"""`--agent command`: an outside coding agent (a command line) as the proposer.

- `agent`: runs the command once per proposal, jailed, and turns its work into a proposal;
- `worktree`: the scratch git checkout it edits and the diff taken from it;
- `brief`: the Markdown brief it reads (`$HARNESS_BRIEF`).
"""
