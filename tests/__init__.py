"""The test suite; tests/README.md maps it. `REPO_ROOT` is the repository's root, for tests that read its files."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
