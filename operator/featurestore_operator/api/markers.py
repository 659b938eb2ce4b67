"""Markers carried in ``Annotated`` metadata, read by the admin policy's generic walk (api/bounds.py).

Pydantic keeps unknown ``Annotated`` metadata on the field and ignores it when validating, and the
CRD generator never sees it: a marker changes neither validation nor the schema."""

from __future__ import annotations


class Image:
    """The field holds a container image reference: checked against ``allowedImagePrefixes``."""

    def __repr__(self) -> str:
        return "Image()"


IMAGE = Image()
