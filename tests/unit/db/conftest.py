"""The database tests use the unit tests' `pg` and `messages` fixtures (tests/unit/conftest.py)."""
