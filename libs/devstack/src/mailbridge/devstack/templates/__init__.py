"""The mail servers' configuration, kept as files: ``dovecot.conf``, ``main.cf``, ``master.cf``.

Each is a :class:`string.Template`: ``$name`` is a value the stack fills in, and ``$$`` is a
literal ``$`` (so Postfix's own ``$mydomain`` is written ``$$mydomain``). A template and its
caller must name the same values: a missing one fails in ``substitute``, an unused one here.
"""

from __future__ import annotations

from importlib.resources import files
from string import Template


def render(name: str, **values: object) -> str:
    """The template ``name`` of this package, with every ``$placeholder`` filled from ``values``."""
    template = Template(files(__name__).joinpath(name).read_text(encoding="utf-8"))
    unused = set(values) - set(template.get_identifiers())
    if unused:
        raise KeyError(f"{name} has no placeholder for {sorted(unused)}")
    return template.substitute(values)
