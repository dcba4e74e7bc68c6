"""The reload plugin: resets a plugin's workers when its source files change (dev mode)."""
