"""Keras-named configuration objects: the shared base of initializers, regularizers and
constraints, and the one way to look them up and serialise them.

Such an object has a ``keras_name`` (``"glorot_uniform"``, ``"l2"``, ``"max_norm"``) and a
``get_config()`` of plain values, so ``{"class_name": keras_name, "config": get_config()}``
rebuilds an equal object through `resolve`, without executing anything from a file.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T", bound="Named")


class Named:
    """Base class: keyword arguments stored as attributes form the config."""

    keras_name = "named"

    def get_config(self) -> dict[str, Any]:
        return dict(vars(self))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def registry(*classes: type[T]) -> dict[str, type[T]]:
    """Look-up table by Keras name and by class name."""
    return {
        **{cls.keras_name: cls for cls in classes},
        **{cls.__name__: cls for cls in classes},
    }


def resolve(
    kind: str,
    identifier: Any,
    by_name: dict[str, type[T]],
    name_defaults: dict[str, dict[str, Any]] | None = None,
) -> T:
    """An object from a name, a ``{"class_name", "config"}`` dict, or an instance (returned).

    ``name_defaults`` gives the arguments a bare name stands for where Keras documents some.
    """
    if isinstance(identifier, Named):
        return identifier  # type: ignore[return-value]
    if isinstance(identifier, dict):
        name, config = identifier.get("class_name"), identifier.get("config") or {}
    else:
        name = identifier
        config = (name_defaults or {}).get(name, {}) if isinstance(name, str) else {}
    if not isinstance(name, str) or name not in by_name:
        raise ValueError(f"Unknown {kind} {identifier!r}; expected one of {sorted(by_name)}")
    return by_name[name](**config)


def serialize(obj: Named) -> dict[str, Any]:
    """``{"class_name": <Keras name>, "config": {...}}``, which `resolve` turns back."""
    return {"class_name": obj.keras_name, "config": obj.get_config()}
