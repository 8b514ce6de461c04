"""The eIDAS provider's PostgreSQL migrations: an Alembic branch labelled ``eidas``."""
