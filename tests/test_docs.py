"""The documentation: README is a short entry page, the reference lives in
docs/ behind an index, and every link stays inside the repository and resolves."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), ROOT / "benchmarks" / "README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)     # code is not linked
    return LINK.findall(text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page):
    found = links(page)
    assert found or page.name != "README.md" or page.parent != ROOT
    for target in found:
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue                                    # a URL or an anchor of the page
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert path.exists(), f"{page.name}: {target} does not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_points_outside_the_repository(page):
    text = page.read_text()
    for outside in ("../shared", "/work/", "DESIGN.md", "SECCOMP-NOTES.md", "KERNEL-SEMANTICS.md",
                    "dist-packages/sandbox"):
        assert outside not in text, f"{page.name} mentions {outside}"


def test_readme_is_an_entry_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    headings = re.findall(r"^## (.+)$", text, re.M)
    for expected in ("Install, and a first run", "What it is", "Profiles", "Where to read more"):
        assert expected in headings, headings
    assert "(docs/README.md)" in text


def test_the_index_links_every_page_of_docs():
    index = DOCS / "README.md"
    linked = {target.split("#")[0] for target in links(index)}
    for page in DOCS.glob("*.md"):
        if page != index:
            assert page.name in linked, f"docs/README.md does not link {page.name}"


def test_the_overhead_page_is_what_the_benchmark_writer_makes(tmp_path, monkeypatch):
    """benchmarks/readme.py writes docs/overhead.md from the committed run:
    the page and its links are its output, not a hand-edited copy."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_readme", ROOT / "benchmarks" / "readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = tmp_path / "overhead.md"
    monkeypatch.setattr(module, "PAGE", page)
    monkeypatch.setattr("sys.argv", ["readme.py", str(ROOT / "benchmarks/latest/results.json"),
                                     str(ROOT / "benchmarks/overhead-notes.md")])
    assert module.main() == 0
    assert page.read_text() == (DOCS / "overhead.md").read_text()
