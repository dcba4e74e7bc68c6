"""Which offsets of one partition may be committed.

Kafka commits a position, not single records: committing N says "every
record below N is done". Jobs finish out of order (two workers, retries,
delays), so a partition remembers the offsets it handed out, in order, and
which of them are done; the position to commit is the end of the longest
done prefix. A record still running, held for its delay, or lost with a
crashed worker keeps the position below it, so a restart or the next group
member gets it again (RoadRunner commits on receipt of an answer whatever it
was, #1325, and loses the job when PHP crashed).
"""

from __future__ import annotations

from collections import deque


class PartitionState:
    def __init__(self, generation: int):
        self.generation = generation  # bumped on every assignment: acks of an older one are stale
        self.outstanding: deque[int] = deque()  # offsets taken, ascending
        self.done: set[int] = set()
        self.position: int | None = None  # the next offset to commit (everything below is done)
        self.committed: int | None = None  # the position the broker has

    def take(self, offset: int) -> None:
        if self.outstanding and offset <= self.outstanding[-1]:
            return  # a re-read after a seek: the offset is already tracked
        self.outstanding.append(offset)

    def finish(self, offset: int) -> bool:
        """Mark `offset` done; True when the committable position moved."""
        self.done.add(offset)
        moved = False
        while self.outstanding and self.outstanding[0] in self.done:
            first = self.outstanding.popleft()
            self.done.discard(first)
            self.position = first + 1
            moved = True
        return moved

    @property
    def dirty(self) -> bool:
        return self.position is not None and self.position != self.committed
