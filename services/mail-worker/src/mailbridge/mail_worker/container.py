"""What the mail-worker's entrypoints may use: ports, nothing concrete (built in bootstrap.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mailbridge.mail_worker.entrypoints.metrics import WorkerMetrics
from mailbridge.mail_worker.ports import (
    ContactBook,
    CredentialCache,
    CredentialsSource,
    CursorStore,
    InboxFetcher,
    MailApi,
    MailboxReader,
    MailBrowser,
    NoWatches,
    PollLimits,
    SendLedger,
    SendPolicy,
    SentFolder,
    SentSearch,
    SubmissionChecker,
    Submitter,
    Watches,
)
from mailbridge.shared.bus import Publisher
from mailbridge.shared.clock import Clock, SystemClock
from mailbridge.shared.content import ContentStore
from mailbridge.shared.messages import Provider


@dataclass(frozen=True)
class Container:
    publisher: Publisher
    credentials: CredentialsSource  # cached: a burst of sends costs one rpc
    fresh_credentials: CredentialsSource  # connection tests must see a password saved just now
    credential_cache: CredentialCache
    mailbox: MailboxReader
    inbox: InboxFetcher
    browser: MailBrowser  # any folder, read on demand
    sent_folder: SentFolder
    sent_search: SentSearch
    submission: SubmissionChecker
    submitter: Submitter
    ledger: SendLedger
    cursors: CursorStore
    content: ContentStore
    policy: SendPolicy
    contacts: ContactBook  # whom each agent knows: a read's first_contact flags
    limits: PollLimits
    metrics: WorkerMetrics
    apis: Mapping[Provider, MailApi] = field(default_factory=dict)  # others: IMAP and SMTP
    clock: Clock = field(default_factory=SystemClock)
    watches: Watches = field(default_factory=NoWatches)  # IMAP mailboxes watched with IDLE
