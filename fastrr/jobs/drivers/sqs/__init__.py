"""The sqs jobs driver (config.py: its keys; driver.py: the driver)."""
