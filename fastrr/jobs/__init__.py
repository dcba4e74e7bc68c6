"""The jobs plugin: pipelines on drivers, consumed by a pool of RR_MODE=jobs workers."""
