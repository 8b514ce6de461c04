"""The back-office JSON APIs (audit trail, directory), each behind admin client authentication."""
