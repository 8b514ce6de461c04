"""HTTP plumbing the broker shares: the fast lane, the worker pool, cookies, forms, pages."""
