"""Store tests use the shared backend fixtures from tests.fixtures.stores (root conftest)."""
