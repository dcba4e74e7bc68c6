"""The grpc plugin (rr-plugins.md §1): plugin.py is the entry point."""
