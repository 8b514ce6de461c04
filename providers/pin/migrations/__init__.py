"""The PIN provider's PostgreSQL migrations: an Alembic branch labelled ``pin``.

``versions`` is the branch's version location, registered with ``broker.store.schema``
by ``providers.pin`` (see ``providers.pin.schema``); ``varco db upgrade`` runs it with the
broker's own migrations.
"""
