"""PlainTextModel: a request body none of whose strings holds a character no name, id or secret
has: a control character, a line separator or a lone surrogate.

The class, not a list of fields: PostgreSQL's text and jsonb cannot store NUL (a 500 when one got
through, as Schemathesis found in an agent's name and then in a Microsoft client id), a lone
surrogate cannot be encoded at all, and no identifier or display name needs a line break. A
model of configuration that subclasses this refuses such a value with a 422 naming the field;
bodies of mail text (which do hold line breaks) are not such models.
"""

from __future__ import annotations

from pydantic import BaseModel, SecretStr, ValidationInfo, field_validator

from mailbridge.shared.headers import first_unsafe_character


class PlainTextModel(BaseModel):
    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, value: object, info: ValidationInfo) -> object:
        for text in _strings_in(value):
            if first_unsafe_character(text) is not None:
                raise ValueError(f"{info.field_name} must not hold control characters")
        return value


def _strings_in(value: object) -> list[str]:
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str)]
    return []
