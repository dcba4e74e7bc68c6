"""fastrr: a RoadRunner-compatible application server for long-lived PHP workers."""

__version__ = "0.1.0"

# The RoadRunner release whose protocol and CLI fastrr speaks; workers see it as
# RR_VERSION and `rr --version` shims report it (Octane requires >= 2023.3.0).
RR_COMPAT_VERSION = "2025.1.2"
