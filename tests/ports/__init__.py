"""What each port promises, written once and run against every implementation of it.

A module here holds one ``*Contract`` class per port: its promises as ``test_*`` methods, and a
``make()`` that builds the implementation under test. A contract is never collected itself (this
folder has no ``test_*`` modules and the classes have no ``Test`` prefix); it runs where a subclass
names an implementation:

- ``tests/unit/test_fakes_follow_their_ports.py``: the fakes of ``tests/fakes/`` (unit);
- ``tests/integration/test_adapters_follow_their_ports.py``: PostgreSQL and NATS (integration).

The level of each test is the folder of its subclass, so one promise runs at both levels. When a
fake and its adapter disagree, the adapter is the truth and the fake is fixed, so the handler tests
that trust the fake keep telling the truth (HOUSE-REVIEW §3.4, after pyeventsourcing's
``AggregateRecorderTestCase``).
"""
