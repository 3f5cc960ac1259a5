--[[
  Takes the load lock of an entry if nobody holds it.

  KEYS[1]  lock
  ARGV[1]  owner token
  ARGV[2]  ttl, ms
  Returns { 1 if taken else 0, Redis time in ms }: the time is when the load starts.
]]
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
local t = redis.call('TIME')
return { ok and 1 or 0, t[1] * 1000 + math.floor(t[2] / 1000) }
