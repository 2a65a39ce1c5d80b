"""What a payload must carry: the JSON paths the core models read, and their types.

Each module of `required_fields/` declares, per event type, the fields without which its
`core.*` model could not place the event. A payload missing one, or carrying it with the wrong
type, is quarantined with a reason naming the path, instead of turning into a silently wrong
row later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["string", "integer", "number", "object", "array", "timestamp", "boolean"]

# The JSON kinds (see the dcicd_json_kind macro) that satisfy each requirement.
JSON_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("VARCHAR",),
    "integer": ("BIGINT",),
    "number": ("BIGINT", "DOUBLE"),
    "object": ("OBJECT",),
    "array": ("ARRAY",),
    "timestamp": ("VARCHAR", "BIGINT", "DOUBLE"),
    "boolean": ("BOOLEAN",),
}


@dataclass(frozen=True)
class Field:
    """A JSON path (dotted, from the payload root) that must hold a value of a kind.

    `optional` fields may be absent or null, but when present must have the kind.
    """

    path: str
    kind: Kind
    optional: bool = False

    @property
    def json_path(self) -> str:
        return "$." + self.path


def required(*paths: str, kind: Kind = "string") -> tuple[Field, ...]:
    return tuple(Field(path, kind) for path in paths)


def optional(*paths: str, kind: Kind = "string") -> tuple[Field, ...]:
    return tuple(Field(path, kind, optional=True) for path in paths)
