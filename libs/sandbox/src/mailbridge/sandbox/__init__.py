"""A Google and a Microsoft look-alike OAuth provider with a slice of Gmail and Graph.

For development and tests only: the services never import it. ``python -m mailbridge.sandbox``
serves it over TLS on loopback. Each user has an in-memory mailbox: mail sent through either
API (Gmail ``messages.send``, Graph ``sendMail``) reaches the users of both look-alikes, and
the worker reads it back through history / delta. ``/_sandbox/`` lets a test register clients
and users, drop mail into an inbox and look into a mailbox, switch failures on, and read
counters, the mail-API request log and the per-user concurrency.
"""
