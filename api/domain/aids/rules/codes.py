"""The aid vocabulary: codes stored and shown as they are, and the amounts' precision."""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum, StrEnum

CENT = Decimal("0.01")
#: no aid, ceiling or envelope is worth more than this (a typo guard, not a policy)
MAX_AMOUNT = Decimal("1000000")


class AidCompetence(StrEnum):
    AIDE_FACULTATIVE = "aide_facultative"
    AIDE_ALIMENTAIRE = "aide_alimentaire"


class AidCategory(StrEnum):
    ALIMENTATION = "alimentation"
    ENERGIE = "energie"
    EAU = "eau"
    LOGEMENT = "logement"
    TRANSPORT = "transport"
    SANTE = "sante"
    SCOLARITE = "scolarite"
    ENFANCE = "enfance"
    INSERTION = "insertion"
    OBSEQUES = "obseques"
    AUTRE = "autre"


class AidForm(StrEnum):
    BON = "bon"
    CHEQUE_ACCOMPAGNEMENT = "cheque_accompagnement"
    PAIEMENT_TIERS = "paiement_tiers"
    NATURE = "nature"
    NUMERAIRE = "numeraire"
    EXONERATION = "exoneration"
    PRET = "pret"


#: forms whose payments carry a voucher number (gap-free per grantor and year)
VOUCHER_FORMS = frozenset({AidForm.BON, AidForm.CHEQUE_ACCOMPAGNEMENT})


class DecisionLevel(IntEnum):
    """Who may decide, in increasing order: a higher level may decide what a lower may."""

    AGENT = 1
    DECIDEUR = 2
    COMMISSION = 3

    @property
    def code(self) -> str:
        return self.name.lower()

    @classmethod
    def of(cls, code: str) -> DecisionLevel:
        return cls[code.upper()]


class RefusalReason(StrEnum):
    HORS_REGLEMENT = "hors_reglement"
    RESSOURCES_SUFFISANTES = "ressources_suffisantes"
    PLAFOND_ATTEINT = "plafond_atteint"
    DOSSIER_INCOMPLET = "dossier_incomplet"
    AUTRE_DISPOSITIF = "autre_dispositif"
    AUTRE = "autre"
