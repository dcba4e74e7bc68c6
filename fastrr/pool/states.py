"""Worker states with RoadRunner's numbers and names (`rr workers`, informer RPC).

fastrr adds BOOTING for the time between spawn and the PID handshake; it is
reported as `inactive`, which is what RoadRunner shows for that phase.
"""

from __future__ import annotations

from enum import IntEnum


class State(IntEnum):
    INACTIVE = 0
    READY = 1
    WORKING = 2
    INVALID = 3
    STOPPING = 4
    STOPPED = 5
    DESTROYED = 6
    MAX_JOBS_REACHED = 7
    ERRORED = 8
    IDLE_TTL_REACHED = 9
    TTL_REACHED = 10
    MAX_MEMORY_REACHED = 11
    EXEC_TTL_REACHED = 12

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    State.INACTIVE: "inactive",
    State.READY: "ready",
    State.WORKING: "working",
    State.INVALID: "invalid",
    State.STOPPING: "stopping",
    State.STOPPED: "stopped",
    State.DESTROYED: "destroyed",
    State.MAX_JOBS_REACHED: "maxJobsReached",
    State.ERRORED: "errored",
    State.IDLE_TTL_REACHED: "idleTTLReached",
    State.TTL_REACHED: "ttlReached",
    State.MAX_MEMORY_REACHED: "maxMemoryReached",
    State.EXEC_TTL_REACHED: "execTTLReached",
}

# States in which a worker counts towards the pool's size: it serves, or will.
LIVE = frozenset({State.INACTIVE, State.READY, State.WORKING})

# Why the supervisor recycles a worker; shown as its status until it is gone.
RECYCLE_REASONS = frozenset({State.MAX_JOBS_REACHED, State.IDLE_TTL_REACHED, State.TTL_REACHED,
                             State.MAX_MEMORY_REACHED, State.EXEC_TTL_REACHED})
