"""What operators run the broker with: probes, metrics, request ids, background jobs and logs."""
