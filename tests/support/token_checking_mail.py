"""A local mail stack of a test's own whose Dovecot checks XOAUTH2 tokens at a sandbox provider
(its oauth2 passdb asks ``POST /_sandbox/introspect``); Postfix's submission authenticates
through it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailbridge.devstack.dovecot import OAuth2Introspection
from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.sandbox import SandboxProvider


@contextmanager
def mail_stack_checking_tokens(sandbox: SandboxProvider) -> Iterator[MailStack]:
    # Not pytest's tmp_path: its parents are mode 0700 and the servers' users must traverse.
    data_dir = Path(tempfile.mkdtemp(prefix="mailbridge-xoauth2-"))
    introspection = OAuth2Introspection(f"{sandbox.base_url}/_sandbox/introspect", sandbox.ca_file)
    stack = MailStack(data_dir, oauth2=introspection)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
