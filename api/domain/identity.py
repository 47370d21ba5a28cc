"""Identity rules: name folding for duplicate detection, pg_trgm similarity, NIR, birth date.

Name folding (:func:`normalise_name`) decisions:

* case is folded (``casefold``), accents stripped (NFKD, combining marks dropped), and the
  ligatures ``œ``/``æ`` spelled ``oe``/``ae``;
* every character that is not a letter or digit (hyphen, apostrophes ``'`` and ``’``, dot,
  comma, any space) separates tokens, so ``Jean-Pierre`` == ``jean pierre``;
* the French particles ``de du des d la le les l`` are dropped as separate tokens
  (``de la Fontaine`` == ``Fontaine``, ``Le Goff`` == ``Goff``), unless that would leave the
  name empty (``Le`` stays ``le``);
* a particle glued to the name is *not* split off: ``D'Arvor`` folds to ``arvor`` but
  ``Darvor`` to ``darvor``. Guessing where a particle was glued would merge real names
  (``Delamare``, ``Lenoir``); the trigram step of matching catches those near misses.
"""

from __future__ import annotations

import unicodedata
from datetime import date

from api.problems import FieldError, ValidationFailed

FRENCH_PARTICLES: frozenset[str] = frozenset({"de", "du", "des", "d", "la", "le", "les", "l"})
EARLIEST_BIRTH_DATE = date(1900, 1, 1)

_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae"})


def _fold(value: str) -> str:
    """Casefold and strip accents, keeping every other character as is."""
    # Compatibility decomposition may produce capitals (℡ → TEL) and casefolding may produce
    # combining marks (İ → i̇), hence decompose, fold, decompose again.
    folded = unicodedata.normalize("NFKD", value).casefold().translate(_LIGATURES)
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _tokens(value: str) -> list[str]:
    folded = _fold(value)
    return "".join(c if c.isalnum() else " " for c in folded).split()


def normalise_name(value: str) -> str:
    """Fold a name for exact comparison (see the module docstring for the rules)."""
    tokens = _tokens(value)
    kept = [t for t in tokens if t not in FRENCH_PARTICLES]
    return " ".join(kept or tokens)


def name_match_keys(birth_name: str, usage_name: str | None, first_names: str) -> frozenset[str]:
    """Keys under which two records of the same person collide.

    One key per last name present (birth and usage), each ``last|first`` where ``last`` is the
    folded last name with its spaces removed (``Ben Ali`` == ``Benali``) and ``first`` the
    first token of the folded first names. Two records are the same-name candidates when their
    key sets intersect, so swapped birth/usage names still match. Using only the first token
    makes ``Jean-Pierre`` and ``Jean`` collide: recall beats precision here because the birth
    date must also be equal and a match only yields candidates, never a merge.
    """
    first_tokens = normalise_name(first_names).split()
    first = first_tokens[0] if first_tokens else ""
    keys: set[str] = set()
    for last_name in (birth_name, usage_name):
        if last_name is None:
            continue
        last = normalise_name(last_name).replace(" ", "")
        if last:
            keys.add(f"{last}|{first}")
    return frozenset(keys)


def _trigrams(value: str) -> set[str]:
    """pg_trgm ``show_trgm``: lower-cased alphanumeric words, padded ``'  '`` + w + ``' '``."""
    words = "".join(c if c.isalnum() else " " for c in value.lower()).split()
    grams: set[str] = set()
    for word in words:
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def trigram_similarity(a: str, b: str) -> float:
    """PostgreSQL ``pg_trgm`` ``similarity(a, b)``: shared trigrams over distinct trigrams.

    Like pg_trgm it does not strip accents; apply :func:`normalise_name` first for that.
    Two strings without any trigram have similarity 0.
    """
    ta, tb = _trigrams(a), _trigrams(b)
    if not ta or not tb:
        return 0.0
    common = len(ta & tb)
    return common / (len(ta) + len(tb) - common)


_NIR_FIRST_DIGITS = frozenset("123478")


def nir_key(body: str) -> str:
    """The two-digit control key of a 13-character NIR body (Corsica ``2A``/``2B`` → 19/18)."""
    number = body[:5] + {"2A": "19", "2B": "18"}.get(body[5:7], body[5:7]) + body[7:]
    return f"{97 - int(number) % 97:02d}"


def _nir_error(detail: str) -> ValidationFailed:
    return ValidationFailed(detail=detail, errors=[FieldError(pointer="/nir", detail=detail)])


def check_nir(value: str) -> str:
    """Canonical NIR (upper case, whitespace removed) or :class:`ValidationFailed` on ``/nir``.

    13 characters (no key) or 15 (key checked). Characters 6-7 are the birth département,
    ``2A``/``2B`` for Corsica; every other character is a digit, the first one of 1 2 3 4 7 8.
    """
    nir = "".join(value.split()).upper()
    if len(nir) not in (13, 15):
        raise _nir_error("A NIR has 13 characters, or 15 with its key.")
    if nir[0] not in _NIR_FIRST_DIGITS:
        raise _nir_error("A NIR starts with 1, 2, 3, 4, 7 or 8.")
    body = nir[:13]
    digits_only = body[:5] + body[7:] + nir[13:]
    if not digits_only.isascii() or not digits_only.isdigit():
        raise _nir_error("A NIR holds only digits, apart from 2A or 2B for Corsica.")
    department = body[5:7]
    if not (department.isascii() and department.isdigit()) and department not in ("2A", "2B"):
        raise _nir_error("The birth département of a NIR is two digits, 2A or 2B.")
    if len(nir) == 15 and nir[13:] != nir_key(body):
        raise _nir_error("The NIR key does not match its first 13 characters.")
    return nir


def check_birth_date(d: date, today: date) -> None:
    """A birth date is neither in the future nor before 1900-01-01 (pointer ``/birth_date``)."""
    if d > today:
        detail = "The birth date is in the future."
    elif d < EARLIEST_BIRTH_DATE:
        detail = "The birth date is before 1900-01-01."
    else:
        return
    raise ValidationFailed(detail=detail, errors=[FieldError(pointer="/birth_date", detail=detail)])
