"""The websockets plugin (rr-plugins.md §8.1) and Server-Sent Events: plugin.py is the entry point."""
