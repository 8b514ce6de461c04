"""Shared pieces of the citizen pages: form fields, the generic form and notice pages.

The lifecycle pages are all "a form, then a result", so one template renders every form
from a list of ``Field`` (labels and hints in Italian and English, the error tied to its
field for screen readers) and one renders every result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response

from broker.errors import Text

if TYPE_CHECKING:
    from providers.base import Pages
    from providers.pin.provider import PinProvider


@dataclass(frozen=True)
class Field:
    name: str
    label: Text
    type: str = "text"  # text, email, tel, date, password, radio, file
    hint: Text | None = None
    options: tuple[tuple[str, Text], ...] = ()
    autocomplete: str = "off"
    required: bool = True
    maxlength: int = 100


@dataclass(frozen=True)
class FormPage:
    title: Text
    action: str
    fields: tuple[Field, ...]
    submit: Text
    intro: Text | None = None
    multipart: bool = False
    hidden: dict[str, str] = field(default_factory=dict)


def text(form: Any, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


async def checked_form(pages: Pages, request: Request) -> Any:
    """The posted form, once its CSRF token is this browser's (else ``CsrfError``)."""
    form = await request.form()
    pages.verify_csrf(request, text(form, "csrf_token") or None)
    return form


def render_form(provider: PinProvider, request: Request, page: FormPage, *,
                values: dict[str, str] | None = None, error: Text | None = None,
                error_field: str | None = None, status: int = 200) -> Response:
    root = request.scope.get("root_path", "")
    context = {"page": page, "action": f"{root}{page.action}", "values": values or {},
               "error": error, "error_field": error_field,
               "links": provider.citizen_links(request)}
    return provider.pages.page(request, "pin_form.html", context, status=status)


def render_notice(provider: PinProvider, request: Request, title: Text, paragraphs:
                  list[Text], *, status: int = 200, error: bool = False,
                  facts: list[tuple[Text, str]] | None = None,
                  then: FormPage | None = None) -> Response:
    root = request.scope.get("root_path", "")
    context = {"title": title, "paragraphs": paragraphs, "is_error": error,
               "facts": facts or [], "then": then,
               "then_action": f"{root}{then.action}" if then else "",
               "values": {}, "links": provider.citizen_links(request)}
    return provider.pages.page(request, "pin_notice.html", context, status=status)
