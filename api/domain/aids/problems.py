"""Problems proper to aides facultatives."""

from __future__ import annotations

from api.problems import Conflict


class AidRuleBreach(Conflict):
    """A grant over a ceiling of the règlement, failing its eligibility, or beyond the
    year's envelope, without a derogation. ``errors`` names the field, ``breaches`` the
    rules; a decideur or the commission may grant anyway with ``derogation.justification``."""

    slug = "aid-rule-breach"
    title = "The grant breaks the règlement or the envelope"
