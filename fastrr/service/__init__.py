"""The service plugin: commands fastrr starts, logs and restarts (RoadRunner's `service`)."""
