"""The Python examples of README.md and bindings/*/README.md, for the tests that run them."""

import re
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
# Every README that tools/run-snippets.py reads: Python examples are run here, the others there.
# (bindings/crate/README.md is a link to README.md, not a README of its own.)
READMES = (
    REPO / "README.md",
    *sorted(p for p in REPO.glob("bindings/*/README*.md") if not p.is_symlink()),
)
_BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```$", re.M | re.S)


def blocks():
    """Every ```python block of the READMEs: (where, code), where is "README.md:LINE"."""
    found = []
    for readme in READMES:
        text = readme.read_text()
        for m in _BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found.append((f"{readme.relative_to(REPO)}:{line}", textwrap.dedent(m.group(2))))
    return found


def block(words):
    """The one block that contains ``words``."""
    hits = [code for _, code in blocks() if words in code]
    assert len(hits) == 1, f"{len(hits)} README blocks contain {words!r}"
    return hits[0]
