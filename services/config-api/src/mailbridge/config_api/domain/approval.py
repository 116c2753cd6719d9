"""The decision on a held send, as a state machine over the send's status and decision.

Only an undecided ``held`` send can be decided: approved, it is ``queued`` again; rejected or
expired, it is ``rejected`` for good. Asking for the decision a send already has changes nothing
(approving twice, rejecting twice, an expiry that comes after any decision), so a retried request
is safe; asking for the other one is ``not_held``. The ledger applies a step with the send's row
locked, so of an approve and a reject that race, one decides and the other sees its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbridge.config_api.domain.outgoing import Decision, SendStatus
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError

_AFTER: dict[Decision, SendStatus] = {
    Decision.APPROVED: SendStatus.QUEUED,
    Decision.REJECTED: SendStatus.REJECTED,
    Decision.EXPIRED: SendStatus.REJECTED,
}


@dataclass(frozen=True)
class SendState:
    status: SendStatus
    decision: Decision | None = None

    @property
    def undecided_hold(self) -> bool:
        return self.status is SendStatus.HELD and self.decision is None


def step(state: SendState, wanted: Decision) -> SendState | None:
    """The state ``wanted`` moves the send to; None: nothing changes. Raises ``not_held`` for a
    decision that contradicts the one made, or for a send that was never held."""
    if state.undecided_hold:
        return SendState(_AFTER[wanted], wanted)
    if wanted is Decision.EXPIRED or _agrees(state.decision, wanted):
        return None
    raise MailbridgeError(ErrorCode.NOT_HELD, _why_not(state))


def _agrees(made: Decision | None, wanted: Decision) -> bool:
    """Rejecting a send that expired agrees with it: both mean never sent."""
    if made is None:
        return False
    return made is wanted or {made, wanted} == {Decision.REJECTED, Decision.EXPIRED}


def _why_not(state: SendState) -> str:
    if state.decision is None:
        return f"It is {state.status.value}, and was never held."
    return f"It was {state.decision.value} already."


def error_after(decision: Decision | None) -> ErrorInfo | None:
    """What a decided send shows as its error: only an expired one has one."""
    if decision is Decision.EXPIRED:
        return ErrorInfo.of(ErrorCode.APPROVAL_EXPIRED)
    return None
