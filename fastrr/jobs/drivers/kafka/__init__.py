"""The kafka jobs driver (config.py: its keys; driver.py: the driver)."""
