"""The ``varco`` command line: serving the broker and the admins' tools (policy, keys, database)."""
