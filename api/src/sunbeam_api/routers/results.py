"""Results: list series, distinct key values, and one series' data as JSON or CSV.

A series is addressed either by path, `/results/{ref}/{event}/{stage}/{name}` (the ref may contain
`/`, raw or as `%2F`: the last three segments are the event, stage and name), or by query,
`/results/series?ref=…&event=…&stage=…&name=…`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from sunbeam_api.dependencies import DbDep, Name, Ref
from sunbeam_api.errors import BadInputError, NotFoundError
from sunbeam_api.results import output as series_output
from sunbeam_api.results import reader as series_reader
from sunbeam_api.results import store
from sunbeam_api.results.points import Window, to_ms

router = APIRouter(prefix="/results", tags=["results"])

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000
MAX_POINTS = 1_000_000

RefQ = Annotated[Ref | None, Query(description="git ref the results were produced on")]
EventQ = Annotated[Name | None, Query(description="event name")]
StageQ = Annotated[Name | None, Query(description="stage name")]
NameQ = Annotated[Name | None, Query(description="series name")]
StartQ = Annotated[datetime | None, Query(description="window start (ISO 8601, inclusive)")]
EndQ = Annotated[datetime | None, Query(description="window end (ISO 8601, inclusive)")]
MaxPointsQ = Annotated[
    int | None,
    Query(ge=1, le=MAX_POINTS, description="downsample to at most this many points (see method)"),
]
MethodQ = Annotated[
    series_reader.Method,
    Query(description="downsampling: minmax-lttb (default, keeps peaks) or bucket-mean"),
]
FormatQ = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]


@router.get("", response_model=store.SeriesPage, summary="List series")
async def list_results(
    db: DbDep,
    ref: RefQ = None,
    event: EventQ = None,
    stage: StageQ = None,
    name: NameQ = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> store.SeriesPage:
    filters = store.key_filter(ref=ref, event=event, stage=stage, name=name)
    return await store.list_series(db, filters=filters, limit=limit, offset=offset)


@router.get("/distinct/{key}", response_model=list[str], summary="Distinct values of a key")
async def distinct(
    db: DbDep,
    key: Annotated[store.ResultKey, Path(description="ref, event, stage or name")],
    ref: RefQ = None,
    event: EventQ = None,
    stage: StageQ = None,
    name: NameQ = None,
) -> list[str]:
    filters = store.key_filter(ref=ref, event=event, stage=stage, name=name)
    return await store.distinct_values(db, key, filters)


@dataclass
class ViewOptions:
    """How a series is read and written out: the query parameters both series routes share."""

    start: StartQ = None
    end: EndQ = None
    max_points: MaxPointsQ = None
    format: FormatQ = "json"
    method: MethodQ = "minmax-lttb"


ViewDep = Annotated[ViewOptions, Depends()]


async def _series(db: DbDep, key: dict[str, str], view_options: ViewOptions) -> Response:
    o = view_options
    start, end = (
        (store.as_utc(o.start) if o.start else None),
        (store.as_utc(o.end) if o.end else None),
    )
    if start and end and start > end:
        raise BadInputError("start must not be after end")
    window = Window(to_ms(start), to_ms(end))
    view = await series_reader.read_view(
        db, key, window=window, max_points=o.max_points, method=o.method
    )
    if view is None:
        where = "/".join(key[k] for k in store.KEYS)
        raise NotFoundError(f"no series {where!r}")
    render = series_output.csv_response if o.format == "csv" else series_output.json_response
    return render(view, start, end)


_SERIES_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/csv": {}}, "description": "the series (JSON, or CSV with format=csv)"},
    404: {"description": "no such series"},
}


@router.get(
    "/series",
    response_model=store.SeriesData,
    responses=_SERIES_RESPONSES,
    summary="One series' data (addressed by query parameters)",
)
async def series_by_query(
    db: DbDep,
    ref: Annotated[Ref, Query()],
    event: Annotated[Name, Query()],
    stage: Annotated[Name, Query()],
    name: Annotated[Name, Query()],
    options: ViewDep,
) -> Response:
    return await _series(db, {"ref": ref, "event": event, "stage": stage, "name": name}, options)


@router.get(
    "/{ref:path}/{event}/{stage}/{name}",
    response_model=store.SeriesData,
    responses=_SERIES_RESPONSES,
    summary="One series' data (ref may contain '/')",
)
async def series_by_path(
    db: DbDep,
    ref: Annotated[Ref, Path()],
    event: Annotated[Name, Path()],
    stage: Annotated[Name, Path()],
    name: Annotated[Name, Path()],
    options: ViewDep,
) -> Response:
    return await _series(db, {"ref": ref, "event": event, "stage": stage, "name": name}, options)
