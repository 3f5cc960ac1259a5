--[[
  The start of a hash object fill: arms the object's tombstone (created as 0, never deleted, if it
  does not exist), so that at the fill a missing tombstone can only mean it was evicted or expired,
  which counts as "deleted".

  KEYS[1]  tombstone of the object
  ARGV[1]  tombstone ttl, ms
  Returns when the fill starts (Redis time, ms).
]]
redis.call('SET', KEYS[1], '0', 'NX', 'PX', ARGV[1])
local t = redis.call('TIME')
return t[1] * 1000 + math.floor(t[2] / 1000)
