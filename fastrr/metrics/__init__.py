"""The metrics plugin: a Prometheus endpoint, application collectors over RPC (RoadRunner's `metrics`)."""
