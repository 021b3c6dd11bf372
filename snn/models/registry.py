"""Model families: the plug-in point that lets any network train through ``snn train`` / ``snn.run``.

A family is a name, a config dataclass (the ``model:`` section of a run config) and a builder
``builder(config, n_inputs, n_classes) -> nn.Module`` that receives the whole :class:`snn.config.Config` (so it can
convert times in ms with ``config.data.dt_ms``) and the data's input channels and classes::

    from dataclasses import dataclass
    import snn.models

    @dataclass
    class TinyConfig(snn.models.ModelConfig):
        hidden: int = 64

    @snn.models.register("tiny", TinyConfig)
    def build_tiny(config, n_inputs, n_classes):
        return TinyNet(n_inputs, n_classes, config.model.hidden)

A config then selects it with ``model: {name: tiny, hidden: 128}``. Without registering anything, a config may
also name a class by import path, ``model: {name: "my_package.my_module:MyNet", hidden: 128}``: the class is
built as ``MyNet(n_inputs=..., n_classes=..., **other keys)`` and the other keys are checked against the
annotated keyword parameters of ``MyNet.__init__`` (types and defaults taken from its signature).

What a model owns (all optional; the Trainer looks for them by name, see :mod:`snn.models.protocol`):
``parameter_groups()`` (named groups with their optimiser settings), ``callbacks()`` (schedules such as the DCLS
σ decay, what the epoch log shows), ``evaluation()`` (the inference form), ``scores``/``loss``,
``accepts_lengths``.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

__all__ = ["ModelConfig", "ModelFamily", "register", "register_model", "get_family", "family_of", "available_models",
           "build_model", "ModelRegistryError"]


class ModelRegistryError(ValueError):
    """An unknown model family, an import path that does not resolve, or a conflicting registration."""


@dataclass
class ModelConfig:
    """Keys every ``model:`` section has; a family's config dataclass subclasses this and adds its own.

    Attributes:
        name: the model family (a registered name, or ``"package.module:Class"``).
        n_inputs: input channels (``None``: taken from the data; if set it must match the data).
        n_classes: classes (``None``: taken from the data; if set it must match the data).
    """

    name: str = "delaynet"
    n_inputs: int | None = None
    n_classes: int | None = None


Builder = Callable[[Any, int, int], nn.Module]


@dataclass(frozen=True)
class ModelFamily:
    """A registered family: its ``name``, its ``config_class`` (a :class:`ModelConfig` dataclass) and ``builder``."""

    name: str
    config_class: type
    builder: Builder
    description: str = ""
    checkpoint_io: Callable[[dict], tuple[int, int]] | None = None

    def build(self, config: Any, n_inputs: int, n_classes: int) -> nn.Module:
        model = self.builder(config, n_inputs, n_classes)
        if not isinstance(model, nn.Module):
            raise ModelRegistryError(f"model family {self.name!r}: the builder returned {type(model).__name__}, "
                                     "expected a torch.nn.Module")
        return model


_FAMILIES: dict[str, ModelFamily] = {}
_BUILTINS_LOADED = False


def _as_model_config(config_class: type, name: str) -> type:
    """``config_class`` itself when it subclasses :class:`ModelConfig`, else a dataclass joining both."""
    if not dataclasses.is_dataclass(config_class) or not isinstance(config_class, type):
        raise ModelRegistryError(f"model family {name!r}: config_class must be a dataclass type, got {config_class!r}")
    if issubclass(config_class, ModelConfig):
        return config_class
    for f in dataclasses.fields(config_class):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ModelRegistryError(f"model family {name!r}: config field {f.name!r} needs a default value")
    return dataclasses.make_dataclass(config_class.__name__, [], bases=(config_class, ModelConfig))


def register_model(name: str, config_class: type, builder: Builder | None = None, *, description: str = "",
                   checkpoint_io: Callable[[dict], tuple[int, int]] | None = None, replace: bool = False):
    """Register a model family; usable as a call or, without ``builder``, as a decorator of the builder.

    Args:
        name: the ``model.name`` that selects it (no ``:``, which marks import paths).
        config_class: dataclass of the family's ``model:`` section (every field needs a default); the common keys
            of :class:`ModelConfig` are added when it does not subclass it.
        builder: ``builder(config, n_inputs, n_classes) -> nn.Module`` with ``config`` the whole run config.
        description: one line for listings.
        checkpoint_io: ``(state_dict) -> (n_inputs, n_classes)``, only needed to reload checkpoints that were written
            without that metadata (``snn.run`` stores it in every checkpoint).
        replace: allow replacing an existing family of that name (e.g. re-running a notebook cell).
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ModelRegistryError(f"model family name must be a non-empty string without ':', got {name!r}")
    cfg_cls = _as_model_config(config_class, name)

    def _register(fn: Builder) -> Builder:
        if not callable(fn):
            raise ModelRegistryError(f"model family {name!r}: builder must be callable, got {fn!r}")
        old = _FAMILIES.get(name)
        if old is not None and not replace and (old.builder is not fn or old.config_class is not cfg_cls):
            raise ModelRegistryError(f"model family {name!r} is already registered (by {old.builder.__module__}); "
                                     "pass replace=True to replace it")
        _FAMILIES[name] = ModelFamily(name, cfg_cls, fn, description, checkpoint_io)
        return fn

    return _register if builder is None else _register(builder)


register = register_model


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        importlib.import_module("snn.models")  # its modules register the built-in families


def available_models() -> list[str]:
    """Names of the registered families (built-in and user)."""
    _load_builtins()
    return sorted(_FAMILIES)


def _class_family(target: str) -> ModelFamily:
    """A family for ``"package.module:Class"``: config keys from the annotated keyword parameters of ``__init__``."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelRegistryError(f"model.name {target!r}: cannot import module {module_name!r}: {err}") from err
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ModelRegistryError(f"model.name {target!r}: module {module_name!r} has no attribute {attr!r}")
    for fam in _FAMILIES.values():  # the module may have registered it under a name
        if fam.builder is obj:
            return ModelFamily(target, fam.config_class, fam.builder, fam.description, fam.checkpoint_io)
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ModelRegistryError(f"model.name {target!r}: expected an nn.Module class or a registered builder, "
                                 f"got {type(obj).__name__}")
    sig = inspect.signature(obj.__init__)
    hints = typing.get_type_hints(obj.__init__) if obj.__init__ is not nn.Module.__init__ else {}
    missing = [p for p in ("n_inputs", "n_classes") if p not in sig.parameters]
    if missing:
        raise ModelRegistryError(f"model.name {target!r}: {obj.__name__}.__init__ must accept n_inputs and n_classes "
                                 f"(missing: {', '.join(missing)})")
    fields = []
    for pname, p in sig.parameters.items():
        if pname in ("self", "n_inputs", "n_classes") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            raise ModelRegistryError(f"model.name {target!r}: parameter {pname!r} of {obj.__name__}.__init__ needs a "
                                     "default value to be set from a config")
        tp = hints.get(pname, type(p.default) if p.default is not None else Any)
        fields.append((pname, tp, dataclasses.field(default=p.default)))
    cfg_cls = dataclasses.make_dataclass(f"{obj.__name__}Config", fields, bases=(ModelConfig,))
    names = [f[0] for f in fields]

    def build(config: Any, n_inputs: int, n_classes: int) -> nn.Module:
        return obj(n_inputs=n_inputs, n_classes=n_classes, **{n: getattr(config.model, n) for n in names})

    return ModelFamily(target, cfg_cls, build, obj.__doc__.strip().splitlines()[0] if obj.__doc__ else "")


def get_family(name: str) -> ModelFamily:
    """The family registered as ``name``, or built from an import path ``"package.module:Class"``."""
    if not isinstance(name, str):
        raise ModelRegistryError(f"model.name: expected a string, got {name!r}")
    _load_builtins()
    if name in _FAMILIES:
        return _FAMILIES[name]
    if ":" in name:
        return _class_family(name)
    import difflib

    hint = difflib.get_close_matches(name, list(_FAMILIES), n=1)
    extra = f" Did you mean {hint[0]!r}?" if hint else ""
    raise ModelRegistryError(f"model.name: unknown model family {name!r}; registered: {', '.join(sorted(_FAMILIES))} "
                             f"(or 'package.module:Class').{extra}")


def family_of(config: Any) -> ModelFamily:
    """The family of a run config (its ``model.name``)."""
    return get_family(config.model.name)


def build_model(config: Any, n_inputs: int, n_classes: int) -> nn.Module:
    """The configured model for data with ``n_inputs`` channels and ``n_classes`` classes.

    ``model.n_inputs`` / ``model.n_classes``, when set, must match the data (checked before building).
    """
    for key, value, actual in (("n_inputs", config.model.n_inputs, n_inputs), ("n_classes", config.model.n_classes, n_classes)):
        if value is not None and value != actual:
            what = "input channels (data.n_channels / data.pool)" if key == "n_inputs" else "classes"
            raise ValueError(f"dataset/model mismatch: the data has {actual} {what}, model.{key} is {value}")
    return family_of(config).build(config, n_inputs, n_classes)
