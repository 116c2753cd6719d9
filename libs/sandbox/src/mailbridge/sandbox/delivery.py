"""Mail between sandbox users: a message sent at either look-alike reaches users of both.

The sender keeps a copy in SENT / sentitems; every user named in To, Cc or Bcc gets one in the
inbox, unread, without the Bcc field. Addresses of nobody here go nowhere, silently.
"""

from __future__ import annotations

from mailbridge.sandbox import mime
from mailbridge.sandbox.mailstore import StoredMessage
from mailbridge.sandbox.state import ProviderState, User

MESSAGE_ID_DOMAINS = {"google": "mail.gmail.com", "microsoft": "sandbox.prod.outlook.com"}


class PostOffice:
    def __init__(self, google: ProviderState, microsoft: ProviderState) -> None:
        self.providers = (google, microsoft)

    def send(
        self,
        provider: ProviderState,
        sender: User,
        raw: bytes,
        *,
        thread_id: str | None = None,
        keep_copy: bool = True,
    ) -> StoredMessage | None:
        """Carry ``raw`` out; the sender's copy (None when not kept). A missing Message-ID is
        assigned first, so every copy carries the same one. Gmail threads the sender's copy by
        ``thread_id`` only; Exchange by the headers too."""
        raw, _ = mime.with_message_id(raw, MESSAGE_ID_DOMAINS[provider.name])
        sent = None
        if keep_copy:
            by_headers = provider.name == "microsoft"
            mailbox = provider.mailbox(sender)
            sent = mailbox.add(raw, "sent", thread_id=thread_id, by_headers=by_headers)
        delivered = mime.without_header(raw, "bcc")
        for state, user in self.recipients(mime.parse(raw).recipients):
            state.mailbox(user).add(delivered, "inbox", unread=True)
        return sent

    def recipients(self, addresses: list[str]) -> list[tuple[ProviderState, User]]:
        """Each user named in ``addresses``, once, whichever look-alike they are at."""
        found: dict[tuple[str, str], tuple[ProviderState, User]] = {}
        for address in addresses:
            for state in self.providers:
                user = state.recipient(address)
                if user is not None:
                    found.setdefault((state.name, user.email), (state, user))
        return list(found.values())
