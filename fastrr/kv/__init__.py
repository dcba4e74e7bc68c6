"""The kv plugin: named key-value storages over RPC (RoadRunner's `kv`)."""
