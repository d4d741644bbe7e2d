"""Providers (admin): the table (10 a page; sort, search and paging done by config-api) with
health badges and model counts, create and delete. Edit, test and discover are in
:mod:`turnout_console.api.provider_actions`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from turnout_common.web import MAX_OFFSET
from turnout_console.api.context import AdminAct, AdminView
from turnout_console.schemas import ProviderForm
from turnout_console.views import KINDS, safe_segment

router = APIRouter(prefix="/providers")
PAGE = 10
SORTABLE = {
    "name": "Name",
    "kind": "Kind",
    "base_url": "Base URL",
    "enabled": "Enabled",
    "models": "Models",
}
"""Columns config-api sorts on (health lives in its memory, so that column does not sort)."""

PageQ = Annotated[int, Query(ge=1, le=MAX_OFFSET // PAGE)]
SortQ = Annotated[str, Query(pattern=f"^-?(priority|{'|'.join(SORTABLE)})$")]
SearchQ = Annotated[str, Query(max_length=200)]


async def _table(
    ctx: AdminView, page: PageQ = 1, sort: SortQ = "priority", search: SearchQ = ""
) -> dict[str, Any]:
    """The page of the table the query asks for (the whole page and the partial show it)."""
    search = search.strip()
    asked = {"sort": sort, "search": search}
    _, window = await ctx.paged("config", "/api/v1/providers", asked, page, PAGE)
    return {**asked, "columns": SORTABLE, "query": urlencode(asked), **window}


TableDep = Annotated[dict[str, Any], Depends(_table)]


@router.get("")
async def providers_page(ctx: AdminView, table: TableDep) -> Response:
    return ctx.render("providers.html", {"session": ctx.session, "kinds": KINDS, **table})


@router.get("/table")
async def providers_table(ctx: AdminView, table: TableDep) -> Response:
    # the address bar follows the table, so a reload or a shared link shows the same rows
    where = f"/providers?page={table['page']}&{table['query']}"
    return ctx.render("partials/providers_table.html", table, headers={"HX-Replace-Url": where})


CHANGED = "providers-changed"
"""The event the providers table refreshes on."""


@router.post("")
async def create_provider(ctx: AdminAct, form: Annotated[ProviderForm, Form()]) -> Response:
    done = f"Provider {form.name.strip()} created."
    return await ctx.act(
        "config", "POST", "/api/v1/providers", done, json=form.body(), trigger=CHANGED
    )


@router.post("/{ref}/delete")
async def delete_provider(ctx: AdminAct, ref: str) -> Response:
    path = f"/api/v1/providers/{safe_segment(ref)}"
    return await ctx.act("config", "DELETE", path, "Provider deleted.", trigger=CHANGED)
