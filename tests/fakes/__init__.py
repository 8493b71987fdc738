"""Reusable fakes for tests: loopback HTTP servers and stand-ins for slow parts of the core."""
