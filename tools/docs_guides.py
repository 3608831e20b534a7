"""Turn the Markdown guides of docs/ into the reStructuredText extra docs of the docs site.

Usage: python tools/docs_guides.py COLLECTION_DIR

The guides have one copy, docs/<name>.md: it is what GitHub shows and the README links. The docs
site needs reStructuredText in docs/docsite/rst/ (antsibull-docs reads nothing else), so
tools/docs.sh runs this on its copy of the collection: for every entry guide_<name> of
docs/docsite/extra-docs.yml it converts docs/<name>.md with pandoc (the pypandoc-binary wheel,
pinned in tools/requirements-docs.txt) into docs/docsite/rst/guide_<name>.rst, with the label
antsibull-docs requires. Links to another guide become references to its page; links to other
files of the repository become their path as text (the site has no copy of them); images stay
relative (tools/docs.sh copies docs/images/ next to the pages).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pypandoc
import yaml

LABEL_PREFIX = "ansible_collections.nova.cells.docsite."
# Links to guides cross pandoc as this made-up scheme, then become :ref: roles.
GUIDE_SCHEME = "nova-cells-guide:"
GUIDE_LINK = re.compile(r"`(?P<text>[^`<]+?) <" + re.escape(GUIDE_SCHEME) + r"(?P<name>[\w-]+)>`__?")
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>[^)\s]+)\)")


def guide_names(extra_docs: Path) -> list[str]:
    """The <name> of every toctree entry guide_<name> of extra-docs.yml, in order."""
    data = yaml.safe_load(extra_docs.read_text(encoding="utf-8"))
    names = []
    for section in data.get("sections", []):
        for entry in section.get("toctree", []):
            ref = entry["ref"] if isinstance(entry, dict) else entry
            if not ref.startswith("guide_"):
                raise SystemExit(f"{extra_docs}: toctree entry {ref!r} is not guide_<name> (docs/<name>.md)")
            names.append(ref.removeprefix("guide_"))
    return names


def rewrite_links(markdown: str, guides: set[str], source: str) -> str:
    """Links to guides get the GUIDE_SCHEME (see guide_refs); other relative links become plain text."""

    def replace(match: re.Match[str]) -> str:
        text, target = match.group("text"), match.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            return match.group(0)
        path = target.partition("#")[0]
        name = Path(path).name.removesuffix(".md")
        if path.endswith(".md") and "/" not in path and name in guides:
            plain = text.replace("`", "")
            return f"[{plain}]({GUIDE_SCHEME}{name})"
        if path.startswith("images/"):
            return match.group(0)
        repo_path = str(Path("docs") / path).replace("docs/../", "")
        if text.strip("`") == repo_path:
            return f"`{repo_path}`"
        return f"{text} (`{repo_path}` in the repository)"

    del source
    return LINK.sub(replace, markdown)


def guide_refs(rst: str) -> str:
    """pandoc's `text <nova-cells-guide:NAME>`__ links become :ref: roles to the guide's label."""
    return GUIDE_LINK.sub(lambda m: f":ref:`{m.group('text')} <{LABEL_PREFIX}guide_{m.group('name')}>`", rst)


def convert(collection: Path) -> list[Path]:
    docs = collection / "docs"
    names = guide_names(docs / "docsite" / "extra-docs.yml")
    destination = docs / "docsite" / "rst"
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        source = docs / f"{name}.md"
        if not source.is_file():
            raise SystemExit(f"docs/docsite/extra-docs.yml names guide_{name}, but there is no docs/{name}.md")
        markdown = rewrite_links(source.read_text(encoding="utf-8"), set(names), source.name)
        rst = guide_refs(pypandoc.convert_text(markdown, "rst", format="gfm-gfm_auto_identifiers", extra_args=["--wrap=none"]))
        target = destination / f"guide_{name}.rst"
        header = f".. Generated from docs/{name}.md by tools/docs_guides.py: edit that file, not this one.\n\n"
        target.write_text(f"{header}.. _{LABEL_PREFIX}guide_{name}:\n\n{rst}", encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    for path in convert(Path(argv[1])):
        print(f"docs_guides: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
