"""The Lua scripts of the redis jobs driver (driver.py says when each runs).

Each runs atomically in Redis, so several fastrr instances on one pipeline
never move, read or remove the same thing twice. redis-py's Script sends them
with EVALSHA and loads them again on NOSCRIPT (after a Redis restart).
Lane streams other than the pipeline's own are named in ARGV and built here,
which Redis Cluster would refuse: the driver runs on one node or Sentinel.
"""

from __future__ import annotations

# KEYS: the lanes, lowest priority first. ARGV: group, consumer, how many at most.
# New entries of the lowest lanes first; flat {lane index (1-based), id, {field, value, ...}, ...}.
READ_LANES = """
local left = tonumber(ARGV[3])
local out = {}
for i, lane in ipairs(KEYS) do
  if left <= 0 then break end
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', left, 'STREAMS', lane, '>')
  if r then
    for _, e in ipairs(r[1][2]) do
      out[#out + 1] = i; out[#out + 1] = e[1]; out[#out + 1] = e[2]
    end
    left = left - #r[1][2]
  end
end
return out
"""

# KEYS: delayed zset, delayed hash, the pipeline's own lane, the lanes zset.
# ARGV: now (ms), how many at most, max_length (0: none), the pipeline's priority, group.
# Moves the due jobs into the lane of their rr_priority (declaring a new lane: its
# group and its place in the lanes zset). Returns {moved, the next due time in ms or false}.
MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local maxlen = tonumber(ARGV[3])
for _, token in ipairs(due) do
  local packed = redis.call('HGET', KEYS[2], token)
  if packed then
    local fields = {}
    local pos = 1
    while pos <= #packed do
      local colon = string.find(packed, ':', pos, true)
      local n = tonumber(string.sub(packed, pos, colon - 1))
      fields[#fields + 1] = string.sub(packed, colon + 1, colon + n)
      pos = colon + n + 1
    end
    local lane = KEYS[3]
    for j = 1, #fields - 1, 2 do
      local n = fields[j] == 'rr_priority' and tonumber(fields[j + 1])
      if n and n == math.floor(n) and n ~= tonumber(ARGV[4]) then
        local prio = string.format('%d', n)
        lane = KEYS[3] .. ':' .. prio
        if not redis.call('ZSCORE', KEYS[4], lane) then
          redis.pcall('XGROUP', 'CREATE', lane, ARGV[5], '0', 'MKSTREAM')
          redis.call('ZADD', KEYS[4], prio, lane)
        end
      end
    end
    local args = {'XADD', lane}
    if maxlen > 0 then
      args[#args + 1] = 'MAXLEN'; args[#args + 1] = '~'; args[#args + 1] = ARGV[3]
    end
    args[#args + 1] = '*'
    for _, f in ipairs(fields) do args[#args + 1] = f end
    redis.call(unpack(args))
    redis.call('HDEL', KEYS[2], token)
  end
  redis.call('ZREM', KEYS[1], token)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or false}
"""

# KEYS: a lane. ARGV: group, consumer, entry ids. Resets the idle time of the entries
# this consumer still owns (XCLAIM JUSTID, no delivery counted), so they are not
# reclaimed while they run; returns the ids it no longer owns (reclaimed by another).
TOUCH = """
local kept = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then kept[#kept + 1] = ARGV[i] else lost[#lost + 1] = ARGV[i] end
end
if #kept > 5 then
  kept[#kept + 1] = 'JUSTID'
  redis.call(unpack(kept))
end
return lost
"""

# KEYS: a lane. ARGV: group, consumer. Removes the consumer if it has nothing pending
# (checked and done atomically: it cannot get an entry in between). 1: removed.
DROP_IDLE_CONSUMER = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""
