"""Suite-wide settings.

Whole runs in the tests use the local sandbox unless a test asks for Docker
explicitly (`--sandbox docker`): `harness run` would otherwise pick Docker
whenever an engine answers (`--sandbox auto`), and the Docker path has tests of
its own (tests/sandboxes, tests/e2e/test_docker_run.py).

Property tests (hypothesis) run under the `ci` profile unless
`HYPOTHESIS_PROFILE` names another: a fixed budget of examples per test, drawn
from a seed derived from each test (`derandomize`), so that every run of the
suite tries the same inputs and takes about the same time. `HYPOTHESIS_PROFILE=deep`
searches ten times longer with fresh randomness and the example database, for
hunting bugs by hand; a failure it finds goes into the test as an `@example`.

The runs of one test session register in a run registry of their own
(`HARNESS_STATE_DIR`, harness/run_registry.py), not in the user's: the local
sandbox of a test run then hides exactly the runs of this session.
"""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("HARNESS_SANDBOX", "local")

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,  # a shared CI machine stretches timings; the budget is the example count
    print_blob=True,
    # The only health check that depends on the machine's speed rather than on the
    # (fixed) inputs: a loaded runner must not fail a test that passes elsewhere.
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def session_run_registry(tmp_path_factory):
    """A run registry for this session's runs (subprocesses inherit it)."""
    before = os.environ.get("HARNESS_STATE_DIR")
    os.environ["HARNESS_STATE_DIR"] = str(tmp_path_factory.mktemp("harness-state"))
    yield Path(os.environ["HARNESS_STATE_DIR"])
    if before is None:
        os.environ.pop("HARNESS_STATE_DIR", None)
    else:
        os.environ["HARNESS_STATE_DIR"] = before
