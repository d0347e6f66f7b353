"""The jinja2 environment of the HTML report templates.

Every template in ``artlens/report/templates`` extends ``base.html`` (head, inline CSS, the title with
its provenance line, the footer), so all reports load through the one :class:`jinja2.PackageLoader`
made here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import jinja2

__all__ = ["render_template", "template_env"]


@cache
def template_env(strict: bool = True) -> jinja2.Environment:
    """The environment of the report templates: HTML autoescaped, block tags' lines trimmed.

    Args:
        strict: an undefined variable is an error; pass ``False`` for templates that test optional
            keys (``{% if s.model %}``) of the records they show.
    """
    return jinja2.Environment(
        loader=jinja2.PackageLoader("artlens.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined if strict else jinja2.Undefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template(name: str, context: Mapping[str, Any], *, strict: bool = True) -> str:
    """Render the report template ``name`` (e.g. ``"search.html"``) with ``context``."""
    return template_env(strict).get_template(name).render(**context)
