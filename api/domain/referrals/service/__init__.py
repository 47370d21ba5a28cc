"""Referrals (adressages) between partners: sending, answering, redirecting, deadlines.

A party of an open referral is attached to its person through a care-team membership that
names the referral as its origin and grants the shared categories (domain.md §7); accepting
turns it into a full membership for the competence, and every way out of the loop (decline,
withdrawal, expiry, cancellation, redirection) ends it in the same transaction.

One module per concern: :mod:`.sending`, :mod:`.answering` (the transitions, accepting and
redirecting), :mod:`.reading` (a referral, the inbox and outbox), :mod:`.messages`, and
:mod:`.system` (what the service does on its own: expiry, a withdrawn consent). Routers get
the :class:`Referrals` context from ``deps.py`` and call the use cases named here.
"""

from api.domain.referrals.service.answering import act
from api.domain.referrals.service.context import Referrals
from api.domain.referrals.service.messages import add_message, messages
from api.domain.referrals.service.reading import page, read
from api.domain.referrals.service.sending import send
from api.domain.referrals.service.system import cancel_for_withdrawn_consent, expire_overdue

__all__ = [
    "Referrals",
    "act",
    "add_message",
    "cancel_for_withdrawn_consent",
    "expire_overdue",
    "messages",
    "page",
    "read",
    "send",
]
