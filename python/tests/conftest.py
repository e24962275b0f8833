"""pytest set-up: the reference module next to the tests, and the repository
root (for the CLI in build/ and the C headers), found from this file."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def cli(root):
    path = os.path.join(root, "build", "rotorquant")
    if not os.access(path, os.X_OK):
        pytest.skip("build/rotorquant not built (run make first)")
    return path
