"""Learning rules by name, each with a config dataclass: the ``training.rule`` section of a run config.

``training.rule`` is either a rule's name (``rule: stdp``, every option at its default) or a mapping whose ``name``
selects the rule and whose other keys are that rule's options, checked like every other config key (unknown keys
are named with a suggestion, values are type- and range-checked)::

    training:
      rule: {name: softhebb, tau: 1.0, layers: "synapses.0"}

A rule registers with ``register_rule(name, ConfigClass, RuleClass)``: the section's keys (other than ``name``)
are the constructor's keyword arguments, unless a ``factory(section, training_config)`` builds the rule.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["RuleConfig", "RuleFamily", "register_rule", "get_rule_family", "available_rules", "rule_from_config",
           "get_rule"]


@dataclass
class RuleConfig:
    """Keys every ``training.rule`` section has; a rule's config dataclass subclasses this.

    Attributes:
        name: the learning rule (``backprop``, ``stdp``, ``rstdp``, ``softhebb``, ``forward_forward``).
    """

    name: str = "backprop"

    def check(self) -> None:
        """Range checks of the rule's options (raise ``ValueError`` naming the key)."""


@dataclass(frozen=True)
class RuleFamily:
    """A registered rule: its name, config dataclass, class and optional ``factory(section, training_config)``."""

    name: str
    config_class: type
    rule_class: type
    factory: Callable[[Any, Any], Any] | None = None

    def build(self, section: Any, training: Any):
        if self.factory is not None:
            return self.factory(section, training)
        options = {f.name: getattr(section, f.name) for f in dataclasses.fields(section) if f.name != "name"}
        return self.rule_class(**options)


_RULES: dict[str, RuleFamily] = {}
_LOADED = False


def register_rule(name: str, config_class: type, rule_class: type,
                  factory: Callable[[Any, Any], Any] | None = None) -> None:
    """Register a learning rule under ``name`` with its config section dataclass and class."""
    if not (dataclasses.is_dataclass(config_class) and issubclass(config_class, RuleConfig)):
        raise TypeError(f"rule {name!r}: config_class must be a dataclass subclassing RuleConfig, got {config_class!r}")
    _RULES[name] = RuleFamily(name, config_class, rule_class, factory)


def _load_builtins() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        importlib.import_module("snn.rules")


def available_rules() -> list[str]:
    """Names of the registered rules."""
    _load_builtins()
    return sorted(_RULES)


def get_rule_family(name: Any) -> RuleFamily:
    """The registered rule ``name`` (``ValueError`` listing the rules, with a suggestion, otherwise)."""
    _load_builtins()
    if isinstance(name, str) and name in _RULES:
        return _RULES[name]
    hint = difflib.get_close_matches(str(name), list(_RULES), n=1)
    extra = f" Did you mean {hint[0]!r}?" if hint else ""
    raise ValueError(f"training.rule.name: unknown learning rule {name!r}; "
                     f"registered: {', '.join(sorted(_RULES))}.{extra}")


def rule_from_config(training: Any):
    """The :class:`~snn.rules.LearningRule` of a ``training`` config section (its ``rule`` sub-section)."""
    section = training.rule
    return get_rule_family(section.name).build(section, training)


def get_rule(name: str, **options: Any):
    """A rule instance by name; ``options`` go to its constructor (e.g. ``synops_penalty`` for backprop)."""
    return get_rule_family(name).rule_class(**options)
