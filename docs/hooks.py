"""MkDocs hook: put the generated config reference into ``config.md`` at build time (never a hand-copied list)."""
from __future__ import annotations

MARKER = "<!-- config-reference -->"


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs hook signature
    if MARKER in markdown:
        from snn.config_doc import config_reference

        return markdown.replace(MARKER, config_reference())
    return markdown
