"""The config reference, generated from the config dataclasses (every key, type, default, meaning).

``config_reference()`` returns Markdown: one table per section of :class:`snn.config.Config`, one per model family
registered in :mod:`snn.models.registry` (the ``model:`` section depends on ``model.name``), and one for the
per-group optimiser settings (``optim.groups.<name>``). The meanings come from the ``Attributes:`` block of each
dataclass's docstring, so the reference never drifts from the code. The docs site renders it
(``docs/config.md``); ``python -m snn.config_doc`` prints it.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any

__all__ = ["config_reference", "attribute_docs", "section_rows"]


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: description}`` from the ``Attributes:`` block of ``cls``'s docstring (and its bases')."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = inspect.getdoc(klass) or ""
        if "Attributes:" not in doc:
            continue
        block = doc.split("Attributes:", 1)[1]
        current = None
        for line in block.splitlines():
            if line and not line.startswith(" "):
                break  # next section of the docstring
            m = re.match(r"^ {4}([A-Za-z_][A-Za-z0-9_, ]*):\s*(.*)$", line)
            if m:
                names = [n.strip() for n in m.group(1).split(",")]
                current = names
                for n in names:
                    out[n] = m.group(2).strip()
            elif current and line.strip():
                for n in current:
                    out[n] = (out[n] + " " + line.strip()).strip()
    return out


def _type_text(tp: Any) -> str:
    from snn.config import _type_name

    origin = typing.get_origin(tp)
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"mapping of {_type_name(k)} to {getattr(v, '__name__', v)}"
    return _type_name(tp)


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return "`null`" if f.default is None else f"`{f.default!r}`"
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        return "`{}`" if value == {} else "(see below)"
    return "required"


def section_rows(cls: type) -> list[tuple[str, str, str, str]]:
    """``(key, type, default, meaning)`` for every field of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    docs = attribute_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        rows.append((f.name, _type_text(hints[f.name]), _default_text(f), docs.get(f.name, "")))
    return rows


def _markdown(text: str) -> str:
    """reST inline markup of the docstrings → Markdown (``x`` → `x`, :class:`a.b` → `a.b`)."""
    text = re.sub(r":(?:class|func|mod|meth|attr|data):`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`").replace("|", "/")


def _table(prefix: str, cls: type) -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, tp, default, meaning in section_rows(cls):
        lines.append(f"| `{prefix}{key}` | {tp} | {default} | {_markdown(meaning)} |")
    return "\n".join(lines)


def config_reference() -> str:
    """The whole reference as Markdown (see the module docstring)."""
    from snn.config import Config, GroupConfig
    from snn.models.registry import available_models, get_family

    parts = []
    sections = {f.name: f for f in dataclasses.fields(Config)}
    hints = typing.get_type_hints(Config)
    for name in sections:
        if name == "model":
            continue
        cls = hints[name]
        parts.append(f"## `{name}:`\n\n{(inspect.getdoc(cls) or '').split(chr(10))[0]}\n\n{_table(name + '.', cls)}\n")
        if name == "optim":
            parts.append(f"### `optim.groups.<group>:`\n\n{(inspect.getdoc(GroupConfig) or '').split(chr(10))[0]}\n\n"
                         f"{_table('optim.groups.<group>.', GroupConfig)}\n")
    parts.append("## `model:`\n\n`model.name` selects the model family; the other keys depend on it. A family registered "
                 "from user code (`snn.models.register`) or named by import path (`package.module:Class`) brings its "
                 "own keys.\n")
    for fam_name in available_models():
        fam = get_family(fam_name)
        doc = (inspect.getdoc(fam.config_class) or "").split("\n")[0]
        parts.append(f"### `model.name: {fam_name}`\n\n{_markdown(fam.description or doc)}\n\n"
                     f"{_table('model.', fam.config_class)}\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(config_reference())
