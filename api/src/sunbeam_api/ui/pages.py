"""The results browser's pages: home, one event's series, a series plot, an overlay, a compare.

Page URLs carry their keys as query parameters (a ref may contain '/'). A key that is malformed
or unknown gets a page naming it, with a link back; never a traceback.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from sunbeam_api.dependencies import (
    NAME_PATTERN,
    DbDep,
    SettingsDep,
    prefect_client,
    unknown_query_parameters,
    validate_ref,
)
from sunbeam_api.errors import BadInputError, NotFoundError, SunbeamApiError
from sunbeam_api.orchestration import ref_envs
from sunbeam_api.results import compare as comparing
from sunbeam_api.results import store
from sunbeam_api.results.output import iso_z_one
from sunbeam_api.results.points import Window
from sunbeam_api.results.reader import read_view
from sunbeam_api.ui import home
from sunbeam_api.ui.assets import bokeh_js
from sunbeam_api.ui.plots import PLOT_POINTS, Line, plot

templates = Environment(
    loader=PackageLoader("sunbeam_api.ui", "templates"), autoescape=select_autoescape()
)
# Commits and env keys are 40 and 64 hex digits: a table shows their first 12 (as git does) and
# keeps the whole id in the tooltip, so the page fits the window and the id can still be read.
templates.filters["short_id"] = lambda value: (value or "")[:12]
METHODS = ("minmax-lttb", "bucket-mean")
DEFAULT_BASE = "main"


class PageError(SunbeamApiError):
    """Bad or unknown input in a page URL: rendered as a page, with a link back."""

    def __init__(self, status: int, message: str, back_url: str = "/ui", back: str = "all refs"):
        super().__init__(message)
        self.status_code = status
        self.back_url, self.back_label = back_url, back


def _refuse_unknown_query(request: Request) -> None:
    unknown, known = unknown_query_parameters(request)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise PageError(
            422, f"unknown parameter {unknown[0][:60]!r} in the address (this page takes {takes})"
        )


router = APIRouter(include_in_schema=False, dependencies=[Depends(_refuse_unknown_query)])


def render(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("head", "")
    return HTMLResponse(templates.get_template(name).render(**values), status_code=status)


async def page_error(_: Request, exc: Exception) -> HTMLResponse:
    assert isinstance(exc, PageError)
    return render(
        "error.html",
        exc.status_code,
        title="Not shown",
        message=exc.message,
        back_url=exc.back_url,
        back_label=exc.back_label,
    )


def _ref(value: str, what: str = "ref") -> str:
    try:
        return validate_ref(value)
    except BadInputError as exc:
        raise PageError(422, f"bad {what} {value!r}: {exc.message}") from None


def _name(value: str, what: str) -> str:
    if not re.match(NAME_PATTERN, value) or value.startswith("$"):
        raise PageError(422, f"bad {what} {value!r}: use letters, digits, '_', '.', ':', '+', '-'")
    return value


async def _known(db: DbDep, ref: str, event: str | None = None, **more: str) -> None:
    """Say which part of the address is unknown: the ref, the event, or the series."""
    if not await store.has_series(db, ref=ref):
        raise PageError(404, f"unknown ref {ref!r}: no results were stored for it")
    if event is not None and not await store.has_series(db, ref=ref, event=event):
        raise PageError(
            404,
            f"unknown event {event!r} for ref {ref!r}",
            _event_url(ref, None),
            f"results of {ref}",
        )
    if more and not await store.has_series(db, ref=ref, event=event, **more):
        where = "/".join(more.values())
        raise PageError(
            404,
            f"unknown series {where!r} in {ref} · {event}",
            _event_url(ref, event),
            f"series of {ref} · {event}",
        )


def _event_url(ref: str, event: str | None) -> str:
    return f"/ui/event?{urlencode({'ref': ref, 'event': event})}" if event else "/ui"


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.6g}"


@router.get("/", response_class=RedirectResponse)
async def root() -> RedirectResponse:
    return RedirectResponse("/ui", status_code=307)


@router.get("/ui", response_class=HTMLResponse)
async def home_page(db: DbDep, settings: SettingsDep) -> HTMLResponse:
    rows = await home.ref_rows(db)
    problem = await home.attach_runs(settings, rows) if rows else None
    base = DEFAULT_BASE if any(r.ref == DEFAULT_BASE for r in rows) else None
    return render(
        "home.html",
        title="Results",
        rows=rows,
        prefect_problem=problem,
        base=base,
        ago=home.ago,
        dashboard=lambda i: home.dashboard_url(settings, i),
    )


@router.get("/ui/refs", response_class=HTMLResponse)
async def refs_page(settings: SettingsDep) -> HTMLResponse:
    """Has my push landed? The page of `GET /refs`; a backend that does not answer is named."""
    rows, problem = [], None
    try:
        repo = ref_envs.require_repo(settings.pipeline_repo)
        async with prefect_client(settings) as client:
            timeout = settings.backend_timeout_s * 3
            rows = await ref_envs.ref_envs(client, repo, settings.work_pool, timeout)
    except SunbeamApiError as exc:
        problem = exc.message
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        problem = f"Prefect did not answer ({type(exc).__name__}): the envs cannot be shown"
    return render(
        "refs.html",
        title="Refs and envs",
        rows=rows,
        problem=problem,
        ago=home.ago,
        dashboard=lambda i: home.dashboard_url(settings, i),
    )


@router.get("/ui/event", response_class=HTMLResponse)
async def event_page(db: DbDep, ref: str = "", event: str = "") -> HTMLResponse:
    ref, event = _ref(ref), _name(event, "event")
    await _known(db, ref, event)
    series = await store.event_series(db, ref, event)
    others = [r for r in await store.refs_with_event(db, event) if r != ref]

    def overlay_query(s: dict[str, Any]) -> str:
        return urlencode(
            [
                ("event", event),
                ("stage", s["stage"]),
                ("name", s["name"]),
                ("ref", ref),
                *(("ref", r) for r in others),
            ]
        )

    return render(
        "event.html",
        title=f"{ref} · {event}",
        ref=ref,
        event=event,
        series=series,
        other_refs=others,
        overlay_query=overlay_query,
        fmt=_fmt,
    )


def _window(start: datetime | None, end: datetime | None, back_url: str, back: str) -> Window:
    """The x window a plot page opens on (the address carries it: links reopen the same view)."""
    ms = [int(store.as_utc(t).timestamp() * 1000) if t else None for t in (start, end)]
    if ms[0] is not None and ms[1] is not None and ms[0] >= ms[1]:
        raise PageError(422, "the view's start must be before its end", back_url, back)
    return Window(ms[0], ms[1])


async def _lines(
    db: DbDep,
    settings: SettingsDep,
    refs: list[str],
    key: dict[str, str],
    method: str,
    window: Window,
    base: str | None = None,
):
    lines, provenance, header = [], [], None
    for ref in refs:
        view = await read_view(
            db,
            {"ref": ref, **key},
            window=window,
            max_points=PLOT_POINTS,
            method=method,  # type: ignore[arg-type]  # checked against the Literal by the route
        )
        if view is None:
            continue
        header = header or view.header
        how = f"{view.method} from level {view.level}" if view.method else "every point"
        note = f"{ref}: {len(view.points)} of {view.points_in_window} points in view ({how})"
        label = f"{ref} (base, beneath)" if ref == base else ref
        key_of = {"ref": ref, **key}
        lines.append(Line(label, key_of, view.points.t, view.points.v, note, ref == base))
        p = view.header.get("provenance") or {}
        run_id = p.get("flow_run_id")
        provenance.append(
            {
                **p,
                "ref": ref,
                "written": iso_z_one(p.get("written_at")),
                "run_url": home.dashboard_url(settings, run_id) if run_id else None,
                "n_points": view.header.get("n_points"),
                "schema_version": view.header.get("schema_version", 1),
            }
        )
    return lines, provenance, header


async def _plot_page(db, settings, refs, key, method, heading, back, query, window, base=None):
    back_url, back_label = back
    if method not in METHODS:
        raise PageError(
            422, f"unknown method {method!r}: use {' or '.join(METHODS)}", back_url, back_label
        )
    lines, provenance, header = await _lines(db, settings, refs, key, method, window, base)
    title = f"{key['stage']}/{key['name']} · {key['event']}"
    opens = None
    if window.start_ms is not None and window.end_ms is not None:
        opens = (float(window.start_ms), float(window.end_ms))
    script, div = plot(lines, title=title, units=header.get("units"), method=method, window=opens)
    other = METHODS[1 - METHODS.index(method)]
    return render(
        "plot.html",
        title=title,
        head=bokeh_js(),
        heading=heading,
        script=script,
        div=div,
        description=f"{header.get('description') or ''} ({header.get('units') or 'no units'})",
        provenance=provenance,
        notes=[line.note for line in lines],
        back_url=back_url,
        back_label=back_label,
        other_method=other,
        method_switch_query=urlencode([*query, ("method", other)]),
        base=base,
    )


ViewStart = Annotated[datetime | None, Query(description="the view's start (ISO 8601)")]
ViewEnd = Annotated[datetime | None, Query(description="the view's end (ISO 8601)")]


@router.get("/ui/series", response_class=HTMLResponse)
async def series_page(
    db: DbDep,
    settings: SettingsDep,
    ref: str = "",
    event: str = "",
    stage: str = "",
    name: str = "",
    method: str = "minmax-lttb",
    start: ViewStart = None,
    end: ViewEnd = None,
) -> HTMLResponse:
    ref, event = _ref(ref), _name(event, "event")
    key = {"event": event, "stage": _name(stage, "stage"), "name": _name(name, "series name")}
    await _known(db, ref, event, stage=key["stage"], name=key["name"])
    query = [("ref", ref), *key.items()]
    back = (_event_url(ref, event), f"series of {ref} · {event}")
    return await _plot_page(
        db,
        settings,
        [ref],
        key,
        method,
        f"{ref} · {event} · {stage}/{name}",
        back,
        query,
        _window(start, end, *back),
    )


@router.get("/ui/overlay", response_class=HTMLResponse)
async def overlay_page(
    db: DbDep,
    settings: SettingsDep,
    event: str = "",
    stage: str = "",
    name: str = "",
    ref: Annotated[list[str] | None, Query()] = None,
    base: str = "",
    method: str = "minmax-lttb",
    start: ViewStart = None,
    end: ViewEnd = None,
) -> HTMLResponse:
    refs = list(dict.fromkeys(_ref(r) for r in ref or []))
    if len(refs) < 1:
        raise PageError(422, "an overlay needs at least one ref: add ref=A&ref=B to the address")
    key = {
        "event": _name(event, "event"),
        "stage": _name(stage, "stage"),
        "name": _name(name, "series name"),
    }
    for r in refs:
        await _known(db, r, key["event"], stage=key["stage"], name=key["name"])
    # The base is drawn beneath the others: the one named, else main when it is shown.
    base = _ref(base, "base") if base else (DEFAULT_BASE if DEFAULT_BASE in refs else "")
    query = [*key.items(), *(("ref", r) for r in refs), *([("base", base)] if base else [])]
    others = [r for r in refs if r != base]
    heading = f"{' and '.join(others) or base}" + (f" over {base}" if base and others else "")
    return await _plot_page(
        db,
        settings,
        refs,
        key,
        method,
        f"{heading} · {event} · {stage}/{name}",
        ("/ui", "all refs"),
        query,
        _window(start, end, "/ui", "all refs"),
        base or None,
    )


def _pair(row: comparing.CompareRow, field: str) -> str:
    a = getattr(row.ref, field) if row.ref else None
    b = getattr(row.base, field) if row.base else None
    either = row.ref or row.base
    units = either.integral_units if field == "integral" and either is not None else None
    text = f"{_fmt(a) or '-'} / {_fmt(b) or '-'}"
    return f"{text} {units}" if units else text


@router.get("/ui/compare", response_class=HTMLResponse)
async def compare_page(db: DbDep, ref: str = "", base: str = DEFAULT_BASE) -> HTMLResponse:
    ref, base = _ref(ref), _ref(base, "base")
    try:
        result = await comparing.compare(db, ref, base)
    except (BadInputError, NotFoundError) as exc:
        raise PageError(exc.status_code, exc.message) from None

    def overlay_query(r: comparing.CompareRow) -> str:
        refs = [x for x, s in ((ref, r.ref), (base, r.base)) if s is not None]
        pairs = [("event", r.event), ("stage", r.stage), ("name", r.name)]
        return urlencode([*pairs, *(("ref", x) for x in refs), ("base", base)])

    pct = lambda x: "new/none" if x is None else f"{100 * x:.3g} %"  # noqa: E731
    return render(
        "compare.html",
        title=f"{ref} vs {base}",
        c=result,
        overlay_query=overlay_query,
        pair=_pair,
        pct=pct,
    )
