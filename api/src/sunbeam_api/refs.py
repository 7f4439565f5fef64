"""Ref validation shared with the sync core: the agent will accept exactly what the API accepts."""

from __future__ import annotations

from sunbeam_api.errors import BadInputError
from sunbeam_sync import BadInputError as SyncBadInput
from sunbeam_sync.refs import validate_ref as _sync_validate_ref


def validate_ref(ref: object) -> str:
    """A valid git ref name or hex SHA (SHAs lower-cased); BadInputError (422) otherwise."""
    try:
        return _sync_validate_ref(ref)
    except SyncBadInput as exc:
        raise BadInputError(str(exc)) from None
