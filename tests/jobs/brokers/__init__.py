"""Jobs on real brokers: one test file per driver, the shared counting in common.py."""
