"""Which passwords a user may choose: long enough, not a common or breached-style password,
not built on the user's own name or e-mail. Pure (no I/O).

The strength estimate is zxcvbn's (Dropbox's estimator, MIT licence, maintained on PyPI as
``zxcvbn``): it matches the password against frequency lists of passwords leaked in public
breaches, common names and words, keyboard walks, dates, repeats and sequences, and the
words it is given (``user_inputs``: here the user's name and e-mail), and estimates the
guesses an attacker needs. A score of 3 ("safely unguessable: moderate protection from
offline slow-hash scenario") is required, and no part may come from the user's own data.
"""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

MIN_LENGTH = 12
MIN_SCORE = 3
#: zxcvbn's cost grows with length; what follows this many characters only adds strength
_EVALUATED_CHARACTERS = 64


def password_problems(password: str, *, email: str, full_name: str | None) -> list[str]:
    """Why ``password`` may not be chosen by this user (empty: it may)."""
    if len(password) < MIN_LENGTH:
        return [f"Use at least {MIN_LENGTH} characters."]
    personal = [email, *email.split("@")[0].split("."), *re.split(r"[\s'-]+", full_name or "")]
    words = [w for w in personal if len(w) >= 3]
    estimate = zxcvbn(password[:_EVALUATED_CHARACTERS], user_inputs=words)
    problems = []
    folded = password.lower()
    if any(w.lower() in folded for w in words if len(w) >= 4) or any(
        m.get("dictionary_name") == "user_inputs" for m in estimate["sequence"]
    ):
        problems.append("Do not build the password on your name or e-mail address.")
    if estimate["score"] < MIN_SCORE:
        problems.append(
            "This password is too common or too easy to guess: "
            "a few unrelated words or a password manager's are better."
        )
    return problems
