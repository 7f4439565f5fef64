"""Ref validation shared with the sync core (sunbeam_contracts): the agent accepts what the API accepts."""

from __future__ import annotations

from sunbeam_api.errors import BadInputError
from sunbeam_contracts import ref_rules


def validate_ref(ref: object) -> str:
    """A valid git ref name or hex SHA (SHAs lower-cased); BadInputError (422) otherwise."""
    try:
        return ref_rules.validate_ref(ref)
    except ref_rules.InvalidRef as exc:
        raise BadInputError(str(exc)) from None
