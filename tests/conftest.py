"""Suite-wide settings.

Whole runs in the tests use the local sandbox unless a test asks for Docker
explicitly (`--sandbox docker`): `harness run` would otherwise pick Docker
whenever an engine answers (`--sandbox auto`), and the Docker path has tests of
its own (tests/sandboxes, tests/e2e/test_docker_run.py).
"""

import os

os.environ.setdefault("HARNESS_SANDBOX", "local")
