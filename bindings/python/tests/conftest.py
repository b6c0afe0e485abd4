"""Fixtures every test module of the Python suite may use."""
import pytest


@pytest.fixture
def scratch(tmp_path):
    """A safe parent: pytest's tmp_path is 0700 under a root-owned tree."""
    tmp_path.chmod(0o755)
    return tmp_path
