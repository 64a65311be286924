"""The configuration reference, generated from the settings object (the README embeds it).

``python -m thinkfl_operator.config.reference`` prints the Markdown table; a test keeps the README's
copy identical.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr

from thinkfl_operator.config.settings import Settings

PREFIX = "THINKFL_"


def rows(model: type[BaseModel], prefix: str = PREFIX) -> list[tuple[str, str, str]]:
    """(variable, default, description) for every field, nested models flattened with ``__``."""
    out: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += rows(annotation, f"{prefix}{name.upper()}__")
            continue
        default = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
        out.append((f"{prefix}{name.upper()}", _default(default), field.description or ""))
    return out


def _default(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "(empty)" if not value.get_secret_value() else "(set)"
    if value == "" or value == [] or value == {}:
        return "(empty)"
    return str(value)


def markdown() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{var}` | `{default}` | {text} |" for var, default, text in rows(Settings)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
