"""The method registry: one canonical name per reuse method, used by the library, configs, results and plots.

A method module registers its class or factory under its name::

    @register_method("transfer")
    class Transfer(ReuseMethod): ...

and everything else builds methods by name with plain keyword settings, so a config dict can build any method::

    method = make_method("transfer", observation_space, action_space, steps=2000, hidden_sizes=(64, 64))

A module registers by being imported: ``rewardshare/rewardmodels/reuse/__init__.py`` imports every method module, so
adding a method is one new module (plus its import there) and one test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from gymnasium import spaces

from rewardshare.rewardmodels.reuse.base import ReuseMethod

MethodFactory = Callable[..., ReuseMethod]
F = TypeVar("F", bound=MethodFactory)

#: Canonical name -> class or factory, in registration order (the order of :func:`list_methods`).
_REGISTRY: dict[str, MethodFactory] = {}
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def register_method(name: str) -> Callable[[F], F]:
    """Register a reuse method under its canonical ``name`` (a decorator for a class or a factory function).

    The class or factory is called as ``factory(observation_space, action_space, **settings)`` and must return a
    :class:`~.base.ReuseMethod` whose ``name`` is ``name``. A decorated class without its own ``name`` gets it.

    Args:
        name: Lower-case letters, digits and underscores, starting with a letter (``"task_embedding"``).

    Returns:
        The decorator; it returns the class or factory unchanged.

    Raises:
        ValueError: If ``name`` is malformed, already registered to another method, or differs from the decorated
            class's own ``name``.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"method name {name!r} is not allowed: use lower-case letters, digits and underscores, starting with a "
            "letter"
        )

    def decorator(factory: F) -> F:
        existing = _REGISTRY.get(name)
        # re-importing the same module (importlib.reload) re-registers the same definition: allowed
        if existing is not None and _qualified(existing) != _qualified(factory):
            raise ValueError(
                f"method name {name!r} is already registered to {_qualified(existing)}: pick another name for "
                f"{_qualified(factory)}"
            )
        if isinstance(factory, type):
            own = factory.__dict__.get("name", "")  # not an inherited one: a subclass may register its own name
            if own and own != name:
                raise ValueError(f"{factory.__name__}.name={own!r} differs from its registered name {name!r}")
            factory.name = name  # type: ignore[attr-defined]
        _REGISTRY[name] = factory
        return factory

    return decorator


def list_methods() -> tuple[str, ...]:
    """The canonical names of every registered reuse method, in registration order."""
    return tuple(_REGISTRY)


def make_method(
    name: str, observation_space: spaces.Space, action_space: spaces.Space, **settings: Any
) -> ReuseMethod:
    """Build the reuse method registered as ``name``.

    Args:
        name: A canonical name (see :func:`list_methods`).
        observation_space: The env's observation space.
        action_space: The env's action space.
        **settings: The method's keyword settings (``steps``, ``lr``, ``seed``, ``hidden_sizes``, ...; see the
            method's class or factory).

    Returns:
        An un-pretrained method whose ``name`` is ``name``.

    Raises:
        ValueError: If ``name`` is not registered (the message lists the registered names).
        TypeError: If a setting is not one the method takes.
    """
    if name not in _REGISTRY:
        raise ValueError(f"method={name!r} is not allowed: use one of {list_methods()}")
    method = _REGISTRY[name](observation_space, action_space, **settings)
    if method.name != name:  # a factory's bug: results would be filed under another name
        raise RuntimeError(f"the factory registered as {name!r} built a method named {method.name!r}")
    return method


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
