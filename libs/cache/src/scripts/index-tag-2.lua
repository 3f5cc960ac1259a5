--[[
  Adds an entry to a tag's index; the entry itself is written in its own slot (for a load's value:
  after this, so that an invalidation of the tag running in between finds it and deletes the
  load's lock). Members are scored by when the entry
  expires; members that expired already are dropped (an index stays proportional to its live
  entries however often it is written), and the index lives at least as long as the entry.

  For the value of a load (ARGV[3] = 1) the tag is checked first: the value is refused if the tag
  was invalidated since the load started, or if its stamp is missing (evicted or expired: it may
  have held an invalidation). For a tag the load did not arm (known only from the value) the
  stamp is created, so only that first fill is refused.

  KEYS[1]  tag index
  KEYS[2]  tag stamp
  ARGV[1]  entry key
  ARGV[2]  entry ttl, ms
  ARGV[3]  1 to check the stamp (a load's value), else 0 (known truth)
  ARGV[4]  when the load started, as this tag's node tells time (ms)
  ARGV[5]  1 if the load armed this tag's stamp, else 0
  ARGV[6]  tag stamp ttl, ms
  Returns 1 if indexed, 0 if the value must not land.
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if ARGV[3] == '1' then
  local stamp = redis.call('GET', KEYS[2])
  if not stamp then
    if ARGV[5] ~= '1' then redis.call('SET', KEYS[2], '0', 'PX', ARGV[6]) end
    return 0
  end
  if tonumber(stamp) >= tonumber(ARGV[4]) then return 0 end
end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
