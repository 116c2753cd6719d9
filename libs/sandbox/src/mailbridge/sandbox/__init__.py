"""A Google and a Microsoft look-alike OAuth provider with a slice of Gmail and Graph.

For development and tests only: the services never import it. ``python -m mailbridge.sandbox``
serves it over TLS on loopback; ``/_sandbox/`` lets a test register clients and users, switch
failures on and read counters.
"""
