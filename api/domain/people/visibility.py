"""Which data category each field of a person belongs to: how a reading is shaped once the
access rule (``api.auth.access``, written in SQL) said which categories the caller may see."""

from __future__ import annotations

from collections.abc import Mapping

from api.domain.catalogue import DataCategory

FIELD_CATEGORIES: Mapping[str, DataCategory] = {
    "birth_name": DataCategory.IDENTITY,
    "usage_name": DataCategory.IDENTITY,
    "first_names": DataCategory.IDENTITY,
    "birth_date": DataCategory.IDENTITY,
    "sex": DataCategory.IDENTITY,
    "birth_place": DataCategory.IDENTITY,
    "commune": DataCategory.CONTACT,
    "domiciliation_organisation_id": DataCategory.CONTACT,
    "address": DataCategory.CONTACT,
    "phone": DataCategory.CONTACT,
    "email": DataCategory.CONTACT,
    "nir": DataCategory.NIR,
    "nir_missing_reason": DataCategory.NIR,
    "situation": DataCategory.SITUATION,
    "last_contact_at": DataCategory.SITUATION,
}
