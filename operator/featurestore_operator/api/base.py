"""Shared pydantic base for every API model: camelCase on the wire, unknown fields rejected."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Base of all spec/status models.

    * Field names are snake_case in Python and camelCase in manifests (``alias_generator``).
    * Unknown fields are an error (``extra="forbid"``) so a typo never silently does nothing.
    * ``wire()`` gives the manifest form.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
        use_attribute_docstrings=True,
    )

    def wire(self) -> dict[str, Any]:
        """The camelCase, JSON-compatible form used in manifests, without unset optionals."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
