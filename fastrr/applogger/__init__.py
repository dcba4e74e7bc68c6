"""The app-logger plugin: RoadRunner's `app.*` RPC, PHP log lines in the server's log."""
