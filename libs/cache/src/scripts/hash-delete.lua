--[[
  Deletes hash objects and leaves a tombstone (Redis time, ms) for fills still running.

  KEYS     (hash object, tombstone) pairs, all of one hash slot
  ARGV[1]  tombstone ttl, ms
  Returns how many objects were deleted.
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local deleted = 0
for i = 1, #KEYS, 2 do
  redis.call('SET', KEYS[i + 1], now, 'PX', ARGV[1])
  deleted = deleted + redis.call('UNLINK', KEYS[i])
end
return deleted
