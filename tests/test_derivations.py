"""Every derivation ends with a Python block that checks its formulas numerically: run them all."""
import pathlib
import re

import pytest

DERIVATIONS = pathlib.Path(__file__).resolve().parent.parent / "derivations"
FILES = sorted(p for p in DERIVATIONS.glob("*.md") if p.name != "README.md")
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def test_every_derivation_has_a_check():
    missing = [p.name for p in FILES if not BLOCK.search(p.read_text())]
    assert FILES and not missing, f"derivations without a ```python check block: {missing}"


def test_index_lists_every_derivation():
    index = (DERIVATIONS / "README.md").read_text()
    unlisted = [p.name for p in FILES if p.name not in index]
    assert not unlisted, f"derivations/README.md does not index {unlisted}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_derivation_check_runs(path):
    for i, code in enumerate(BLOCK.findall(path.read_text())):
        exec(compile(code, f"{path.name}[block {i}]", "exec"), {"__name__": f"derivation_{path.stem}"})
