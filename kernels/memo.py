"""A memoising decorator that ``torch.compile`` can see through.

``functools.lru_cache`` is opaque to dynamo, which then traces the wrapped function itself (and stops at the
``compile()`` of generated code). A plain dict lookup is traced as a constant once the entry exists, so the
neuron declarations and reference step functions built on the first eager call cost nothing inside a graph.
"""
from __future__ import annotations

import functools
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


def memoize(fn: F) -> F:
    cache: dict = {}

    @functools.wraps(fn)
    def wrapper(*args):
        value = cache.get(args)
        if value is None:
            value = fn(*args)
            cache[args] = value
        return value

    wrapper.cache = cache  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
