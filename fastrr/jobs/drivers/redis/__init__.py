"""The redis jobs driver (config.py: its keys; driver.py: the driver)."""
