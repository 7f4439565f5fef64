"""Branch preview as JSON: every series of a ref against a base ref."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from sunbeam_api.dependencies import DbDep, Ref
from sunbeam_api.results import compare as comparing

router = APIRouter(prefix="/results", tags=["results"])


@router.get(
    "/compare",
    response_model=comparing.Comparison,
    summary="Compare every series of a ref with a base ref",
    responses={404: {"description": "a ref has no results"}, 422: {"description": "ref == base"}},
)
async def compare_refs(
    db: DbDep,
    ref: Annotated[Ref, Query(description="the ref to preview, e.g. feat/x")],
    base: Annotated[Ref, Query(description="the ref to compare against")] = "main",
) -> comparing.Comparison:
    """Changed series first (largest relative change first), then series on one side only."""
    return await comparing.compare(db, ref, base)
