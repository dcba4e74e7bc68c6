"""The broadcast plugin: pub/sub hubs for websockets and SSE, published to over RPC."""
