"""A local mail stack of a test's own whose Dovecot checks XOAUTH2 tokens at a sandbox provider
(its oauth2 passdb asks ``POST /_sandbox/introspect``); Postfix's submission authenticates
through it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mailbridge.devstack.dovecot import OAuth2Introspection
from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.sandbox import SandboxProvider
from tests.support.own_mail_stack import own_mail_stack


@contextmanager
def mail_stack_checking_tokens(sandbox: SandboxProvider) -> Iterator[MailStack]:
    introspection = OAuth2Introspection(f"{sandbox.base_url}/_sandbox/introspect", sandbox.ca_file)
    with own_mail_stack("xoauth2", oauth2=introspection) as stack:
        yield stack
