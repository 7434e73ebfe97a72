"""Where the repository and the shared test fixtures are, for test modules at any depth of tests/."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
