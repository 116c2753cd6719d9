"""A local mail stack (Dovecot + Postfix) of a test's own, with options the session's lacks."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mailbridge.devstack.mailstack import MailStack


@contextmanager
def own_mail_stack(prefix: str, **options: Any) -> Iterator[MailStack]:
    """A started ``MailStack(directory, **options)``, stopped and removed on exit."""
    # Not pytest's tmp_path: its parents are mode 0700 and the servers' users must traverse.
    data_dir = Path(tempfile.mkdtemp(prefix=f"mailbridge-{prefix}-"))
    stack = MailStack(data_dir, **options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
