"""The front page and the documentation site agree: README.md stays a front page whose links resolve
on GitHub, docs/index.md (which includes README's body) defines every link name that body uses, every
page is in mkdocs.yml's nav, and `make test` builds the site strictly first. (The build itself,
`mkdocs build --strict`, is `make docs`, which `make test` runs before pytest.)"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF_DEF = re.compile(r"^\[([^\]]+)\]:\s*(\S+)\s*$", re.M)


def _body(text: str) -> str:
    """README's part between the snippet markers (what docs/index.md includes)."""
    start = text.index("--8<-- [start:body]")
    return text[text.index("\n", start) + 1:text.index("--8<-- [end:body]")]


def test_readme_is_a_front_page_with_the_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for command in ("make train", "make test", "mpirun -n 4 python scripts/train.py --config gym_cartpole"):
        assert command in text, command


def test_readme_links_resolve_from_the_repository_root():
    text = (ROOT / "README.md").read_text()
    targets = [t for _, t in REF_DEF.findall(text)] + re.findall(r"\]\(([^)#\s]+)[^)]*\)", text)
    assert targets
    for target in targets:
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target.split("#")[0]).exists(), target        # an anchor: mkdocs --strict checks it


def test_the_site_front_page_defines_every_link_name_the_readme_body_uses():
    readme = (ROOT / "README.md").read_text()
    index = (ROOT / "docs" / "index.md").read_text()
    assert '--8<-- "README.md:body"' in index
    used = set(re.findall(r"\]\[([^\]]+)\]", _body(readme)))
    on_github = dict(REF_DEF.findall(readme))
    on_site = dict(REF_DEF.findall(index))
    assert used and used <= set(on_github) and used <= set(on_site), (used - set(on_github), used - set(on_site))
    for name in used:      # the same page in both places: docs/NAME.md on GitHub, NAME.md in the site
        assert on_github[name] == "docs/" + on_site[name], name
        assert (ROOT / "docs" / on_site[name].split("#")[0]).is_file(), name
    assert not re.search(r"\]\((?!https?://|#)[^)]*\)", _body(readme)), "inline relative links break on one side"


def test_every_page_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text()
    nav = set(re.findall(r"^\s+- (?:[^:\n]+: )?(\S+\.md)\s*$", config[config.index("\nnav:"):], re.M))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert nav == pages, (pages - nav, nav - pages)


def test_make_test_builds_the_docs_strictly_first():
    makefile = (ROOT / "Makefile").read_text()
    test_deps = re.search(r"^test:(.*)$", makefile, re.M).group(1).split()
    assert "docs" in test_deps
    recipe = re.search(r"^docs:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "mkdocs build --strict" in recipe
    assert "--quiet" not in recipe and " -q" not in recipe     # under --quiet, --strict exits 0 despite warnings
    assert "site/" in (ROOT / ".gitignore").read_text().split()
