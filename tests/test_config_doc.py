"""The generated config reference lists every key of every section and model family, each with a meaning."""
from __future__ import annotations

import dataclasses
import typing

from snn.config import Config, GroupConfig
from snn.config_doc import config_reference, section_rows
from snn.models import available_models, get_family


def _sections():
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if f.name != "model":
            yield f"{f.name}.", hints[f.name]
    yield "optim.groups.<group>.", GroupConfig
    for name in _library_families():
        yield "model.", get_family(name).config_class


def _library_families() -> list[str]:
    """Families registered by the library (tests may register their own in the same process)."""
    return [n for n in available_models() if get_family(n).builder.__module__.startswith("snn.")]


def test_every_key_appears_with_a_meaning():
    text = config_reference()
    for prefix, cls in _sections():
        for key, _tp, _default, meaning in section_rows(cls):
            assert f"`{prefix}{key}`" in text, f"{prefix}{key} missing from the reference"
            assert meaning.strip(), f"{prefix}{key} ({cls.__name__}) has no description in its Attributes block"


def test_every_family_has_a_section():
    text = config_reference()
    for name in _library_families():
        assert f"### `model.name: {name}`" in text
