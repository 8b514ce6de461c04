"""Demo parts the broker serves itself (the demo relying parties); never on in production."""
