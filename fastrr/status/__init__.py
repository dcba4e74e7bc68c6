"""The status plugin: health, readiness and jobs probes over HTTP and RPC (RoadRunner's `status`)."""
