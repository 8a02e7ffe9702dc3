"""The documentation stays true to the code and inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contracts.reasons import ReasonCode, describe

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "deploy" / "README.md"]
DOCS += sorted((ROOT / "docs").glob("*.md"))


def test_domain_lists_every_reason_code_with_its_meaning() -> None:
    text = (ROOT / "docs" / "domain.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", text, re.MULTILINE))

    assert set(rows) == {reason.value for reason in ReasonCode}
    for reason in ReasonCode:
        assert rows[reason.value].strip() == describe(reason)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_point_at_nothing_outside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")

    assert "../" not in text
    for target in re.findall(r"\]\(([^)#]+)[^)]*\)", text):
        if not target.startswith("http"):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
