"""Helpers shared by the integration, e2e and fault tests (real services, no mocks)."""
