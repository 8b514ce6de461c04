"""Login methods: each subpackage implements the small Provider interface of ``providers.base``."""
