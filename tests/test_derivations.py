"""Every derivation ends with Python blocks that check its formulas numerically and against the code: run them all.

The blocks of one file run in order in one namespace (like the cells of a notebook), so a short
"The code agrees" block can reuse the inputs and derived gradients of the block before it.
"""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DERIVATIONS = ROOT / "derivations"
FILES = sorted(p for p in DERIVATIONS.glob("*.md") if p.name != "README.md")
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
LINK = re.compile(r"derivations/([\w_]+\.md)")


def test_every_derivation_has_a_check():
    missing = [p.name for p in FILES if not BLOCK.search(p.read_text())]
    assert FILES and not missing, f"derivations without a ```python check block: {missing}"


def test_every_derivation_checks_the_code():
    silent = [p.name for p in FILES if not re.search(r"^\s*(from|import) tinylm", p.read_text(), re.M)]
    assert not silent, f"derivations whose check blocks never run the tinylm code they document: {silent}"


def test_index_lists_every_derivation():
    index = (DERIVATIONS / "README.md").read_text()
    unlisted = [p.name for p in FILES if p.name not in index]
    assert not unlisted, f"derivations/README.md does not index {unlisted}"


def _sources():
    return sorted((ROOT / "tinylm").rglob("*.py")) + [ROOT / "README.md"]


def test_every_linked_derivation_exists():
    broken = sorted({f"{src.relative_to(ROOT)}: derivations/{name}"
                     for src in _sources() for name in LINK.findall(src.read_text())
                     if not (DERIVATIONS / name).exists()})
    assert not broken, f"links to derivations that do not exist: {broken}"


def test_every_derivation_is_linked_from_the_code():
    linked = {name for src in (ROOT / "tinylm").rglob("*.py") for name in LINK.findall(src.read_text())}
    orphans = [p.name for p in FILES if p.name not in linked]
    assert not orphans, f"derivations that no file under tinylm/ links to: {orphans}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_derivation_check_runs(path):
    namespace = {"__name__": f"derivation_{path.stem}"}
    for i, code in enumerate(BLOCK.findall(path.read_text())):
        exec(compile(code, f"{path.name}[block {i}]", "exec"), namespace)
