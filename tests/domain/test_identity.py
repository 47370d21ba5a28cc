from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.identity import (
    check_birth_date,
    check_nir,
    name_match_keys,
    nir_key,
    normalise_name,
    trigram_similarity,
)
from api.problems import ValidationFailed

# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Élodie", "elodie"),
        ("Jean-Pierre", "jean pierre"),
        ("  JEAN   pierre ", "jean pierre"),
        ("de La Fontaine", "Fontaine"),
        ("Le Goff", "GOFF"),
        ("Le Goff-D'Arvor", "goff arvor"),
        ("d’Alembert", "Alembert"),
        ("Cœur", "coeur"),
        ("St. Exupéry", "st exupery"),
        ("Müller", "muller"),
    ],
)
def test_names_that_fold_together(a: str, b: str) -> None:
    assert normalise_name(a) == normalise_name(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("Martin", "Martine"), ("Darvor", "D'Arvor"), ("Dupont", "Dupond"), ("Lenoir", "Noir")],
)
def test_names_that_stay_apart(a: str, b: str) -> None:
    assert normalise_name(a) != normalise_name(b)


def test_folding_output() -> None:
    assert normalise_name("Le Goff-D'Arvor") == "goff arvor"
    assert normalise_name("Jean-Pierre") == "jean pierre"


def test_particles_only_name_is_kept() -> None:
    assert normalise_name("Le") == "le"
    assert normalise_name("De La") == "de la"


@given(st.text())
def test_normalise_is_idempotent_and_tidy(value: str) -> None:
    once = normalise_name(value)
    assert normalise_name(once) == once
    assert once == " ".join(once.split())
    assert once == once.casefold()


FRENCH_LETTERS = "abcdefghijklmnopqrstuvwxyzàâäçéèêëîïôöùûüÿœæ"


@given(st.text(alphabet=FRENCH_LETTERS, min_size=1))
def test_case_and_hyphens_do_not_matter(word: str) -> None:
    assert normalise_name(f"{word}-{word}") == normalise_name(f"{word.upper()} {word.lower()}")


def test_keys_match_with_birth_and_usage_names_swapped() -> None:
    married = name_match_keys("Dupont", "Martin", "Élodie Marie")
    typed_otherwise = name_match_keys("MARTIN", None, "elodie")
    assert married & typed_otherwise
    assert name_match_keys("martin", "dupont", "ELODIE") == married


def test_keys_fold_particles_hyphens_and_spaces() -> None:
    assert name_match_keys("De La Fontaine", None, "Jean-Pierre") == {"fontaine|jean"}
    assert name_match_keys("Ben Ali", None, "Karim") & name_match_keys("Benali", None, "karim")


def test_keys_differ_for_other_people() -> None:
    assert not name_match_keys("Dupont", "Martin", "Élodie") & name_match_keys(
        "Dupont", None, "Eloise"
    )
    assert not name_match_keys("Dupont", None, "Élodie") & name_match_keys("Durand", None, "Élodie")


def test_blank_usage_name_adds_no_key() -> None:
    assert name_match_keys("Dupont", "", "Jean") == {"dupont|jean"}
    assert name_match_keys("Dupont", " - ", "Jean") == {"dupont|jean"}


# --- trigram similarity ----------------------------------------------------------------------


def test_pg_trgm_documented_value() -> None:
    # PostgreSQL docs: similarity('word', 'two words') = 0.36363637 (4 shared of 11)
    assert trigram_similarity("word", "two words") == pytest.approx(4 / 11)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("cat", "cat", 1.0),
        ("CAT", "cat", 1.0),
        ("cat", "dog", 0.0),
        ("", "cat", 0.0),
        ("", "", 0.0),
        ("!!!", "!!!", 0.0),
        # "  a","  a ",... : 'a' -> {"  a", " a "}; 'ab' -> {"  a", " ab", "ab "}
        ("a", "ab", 1 / 4),
        # word order and punctuation do not matter: words are a set of trigrams
        ("jean-pierre", "pierre jean", 1.0),
        # dupont: "  d"," du","dup","upo","pon","ont","nt " ; dupond: same but "ond","nd "
        ("dupont", "dupond", 5 / 9),
    ],
)
def test_trigram_known_values(a: str, b: str, expected: float) -> None:
    assert trigram_similarity(a, b) == pytest.approx(expected)


@given(st.text(), st.text())
def test_trigram_is_symmetric_and_bounded(a: str, b: str) -> None:
    s = trigram_similarity(a, b)
    assert s == trigram_similarity(b, a)
    assert 0.0 <= s <= 1.0


@given(st.text(alphabet="abcdefghij -", min_size=1).filter(lambda s: s.strip(" -")))
def test_trigram_identity(a: str) -> None:
    assert trigram_similarity(a, a) == 1.0


# --- NIR -------------------------------------------------------------------------------------

VALID_NIR = "2690549588157"  # 13-char body; key 80 (widely published example)


def test_known_nir_key() -> None:
    assert nir_key(VALID_NIR) == "80"
    assert check_nir("2 69 05 49 588 157 80") == "269054958815780"


def test_thirteen_characters_are_accepted_without_key() -> None:
    assert check_nir(VALID_NIR) == VALID_NIR


def test_corsican_departments_use_19_and_18_for_the_key() -> None:
    body_a = "180062A004123"
    body_b = "180062B004123"
    assert nir_key(body_a) == f"{97 - int('1800619004123') % 97:02d}"
    assert nir_key(body_b) == f"{97 - int('1800618004123') % 97:02d}"
    assert nir_key(body_a) != nir_key(body_b)
    assert check_nir(body_a.lower() + nir_key(body_a)) == body_a + nir_key(body_a)


def _error(value: str) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        check_nir(value)
    assert [e.pointer for e in info.value.errors] == ["/nir"]
    return info.value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "269054958815",  # 12
        "26905495881578",  # 14
        "2690549588157800",  # 16
        "569054958815780",  # first digit 5
        "069054958815780",
        "26905X958815780",
        "269052C58815780",  # only 2A / 2B
        "2690A4958815780",
        "269054958815781",  # wrong key
        "26905495881578A",
        "２６９０５４９５８８１５７",  # full-width digits
    ],
)
def test_invalid_nirs(value: str) -> None:
    _error(value)


nir_bodies = st.builds(
    lambda first, middle, dep, rest: first + middle + dep + rest,
    st.sampled_from("123478"),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
    st.sampled_from(["2A", "2B"]) | st.text(alphabet="0123456789", min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
)


@given(nir_bodies, st.integers(min_value=0, max_value=99))
def test_only_the_computed_key_validates(body: str, key: int) -> None:
    computed = nir_key(body)
    assert 1 <= int(computed) <= 97
    assert check_nir(body + computed) == body + computed
    assert check_nir(body) == body
    if f"{key:02d}" != computed:
        _error(body + f"{key:02d}")


# --- birth date ------------------------------------------------------------------------------

TODAY = date(2026, 3, 15)


@pytest.mark.parametrize("d", [date(1900, 1, 1), date(1985, 7, 4), TODAY])
def test_plausible_birth_dates(d: date) -> None:
    check_birth_date(d, TODAY)


@pytest.mark.parametrize("d", [date(1899, 12, 31), date(2026, 3, 16), date(2100, 1, 1)])
def test_implausible_birth_dates(d: date) -> None:
    with pytest.raises(ValidationFailed) as info:
        check_birth_date(d, TODAY)
    assert [e.pointer for e in info.value.errors] == ["/birth_date"]
