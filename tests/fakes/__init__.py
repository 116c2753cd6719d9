"""Fakes of the services' ports, one module per service; tests/ports/ proves each against its
real adapter, so a fake cannot drift from what it stands for."""
