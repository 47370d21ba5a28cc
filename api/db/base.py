"""Declarative base for every table, with an explicit naming convention."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import SQLModel

from api.db.scoping import Scoping

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata


class Table(SQLModel):
    """Base of every table. Each table class must declare ``__scoping__``:
    :func:`check_scoping_declared` runs when ``api.db.tables`` is imported and refuses
    a table that says nothing about who may read its rows."""

    __scoping__: ClassVar[Scoping]


def check_scoping_declared() -> None:
    """Raise ``TypeError`` for any table of the metadata without a scoping declaration."""
    declared = {cls.__tablename__: cls for cls in _table_classes()}
    for name in metadata.tables:
        cls = declared.get(name)
        if cls is None or not isinstance(cls.__dict__.get("__scoping__"), Scoping):
            raise TypeError(f"table {name} declares no __scoping__: say who may read its rows")


def scoping_of(table_name: str) -> Scoping:
    """The scoping declared by the table class mapped to ``table_name``."""
    for cls in _table_classes():
        if cls.__tablename__ == table_name:
            return cls.__scoping__
    raise KeyError(table_name)


def _table_classes() -> list[type[Table]]:
    found: list[type[Table]] = []
    stack: list[type[Table]] = [Table]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if hasattr(cls, "__table__"):
            found.append(cls)
    return found


def core_table(model: type[SQLModel]) -> sa.Table:
    """A model's Core table, typed (SQLModel leaves ``model.__table__`` untyped): for the
    bulk and hot-path statements written in Core on the models' tables."""
    table = sa.inspect(model).local_table
    assert isinstance(table, sa.Table)
    return table


def instant_column(nullable: bool = False) -> sa.Column[datetime]:
    """A timestamp with its time zone (every instant the service stores)."""
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


def codes_column(length: int) -> sa.Column[list[str]]:
    """A list of codes (communes, competences, kinds), never null."""
    return sa.Column(ARRAY(sa.String(length)), nullable=False)
