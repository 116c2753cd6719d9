"""What the mail-worker read about an inbound message before anyone acts on it: the sender
authentication its receiving server recorded, and whether the From resembles the agent's domain.

Part of ``message.received`` (``screening``); fields added later (``first_contact``) are optional,
so the event keeps its version.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class AuthVerdict(StrEnum):
    """A result keyword of RFC 8601 §2.7 as the trusted server wrote it, or ``unknown``: no
    trusted Authentication-Results, or one that says nothing (or nothing readable) of the method.
    ``none`` is the server's own word (e.g. SPF: the domain publishes no policy), not ours."""

    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"
    POLICY = "policy"
    UNKNOWN = "unknown"


class LookalikeReason(StrEnum):
    """Why a sender looks like the agent's own domain without being it."""

    CONFUSABLE_CHARACTERS = "confusable_characters"  # Cyrillic or Greek letters for Latin ones
    PUNYCODE = "punycode"  # an xn-- name that reads as a look-alike once decoded
    EDIT_DISTANCE = "edit_distance"  # a letter or two off (paypa1.com for paypal.com)
    DISPLAY_NAME = "display_name"  # the display name shows the agent's domain; the address is not


class LookalikeSender(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    reason: LookalikeReason
    sender_domain: str = Field(description="the From address's domain, as the message wrote it")
    resembles: str = Field(description="the agent's own domain (its mailbox address's)")
    detail: str = Field(description="one line a person or an agent can read")


class Screening(BaseModel):
    """``spf``, ``dkim``, ``dmarc``: each the method's first result in the trusted
    Authentication-Results, but ``pass`` if any of its results passed (a message may carry several
    DKIM signatures; one good one is what DMARC looks for). ``authserv_id`` null: nothing was
    checked (no trusted id configured, or the receiving server added no Authentication-Results
    with it), and every verdict is ``unknown``, which is not ``fail``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    authserv_id: str | None = Field(
        default=None,
        description="the authserv-id of the Authentication-Results the verdicts come from: the"
        " operator-trusted one (MAILBRIDGE_TRUSTED_AUTHSERV_ID), topmost if several",
    )
    spf: AuthVerdict = AuthVerdict.UNKNOWN
    dkim: AuthVerdict = AuthVerdict.UNKNOWN
    dmarc: AuthVerdict = AuthVerdict.UNKNOWN
    lookalike_sender: LookalikeSender | None = Field(
        default=None,
        description="set when the From domain or display name imitates the agent's own domain",
    )
    first_contact: bool | None = Field(
        default=None,
        description="true: the agent never wrote to nor heard from this From address before this"
        " read; false: it did; null: not known (the From is no single address, or policy, which"
        " keeps the history, did not answer in time)",
    )
