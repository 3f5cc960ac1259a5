--[[
  The end of a load: lands only if the load still holds its lock and none of its tags was
  invalidated since it started. A lock that is gone (released, expired, evicted) counts as
  "changed": nothing is written. So does a missing stamp (evicted or expired: it may have held an
  invalidation); for a tag known only now (computed from the value) the stamp is created, so only
  that first fill is refused.

  KEYS[1]          entry
  KEYS[2]          lock of the entry
  KEYS[3..2+n]     tag indexes of the entry
  KEYS[3+n..2+2n]  tag stamps of the same tags
  ARGV[1]          envelope (JSON)
  ARGV[2]          ttl, ms
  ARGV[3]          the lock's owner token
  ARGV[4]          when the load started (Redis time, ms)
  ARGV[5]          n, the number of tags
  ARGV[6]          1 if the tags were armed when the lock was taken, else 0
  ARGV[7]          tag stamp ttl, ms
  Returns 1 if written, 0 if not.
]]
--@include index-tags
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
local n = tonumber(ARGV[5])
for i = 1, n do
  local stamp = redis.call('GET', KEYS[2 + n + i])
  if not stamp and ARGV[6] ~= '1' then
    -- A tag known only now: from here on its stamp exists; this one fill cannot tell, so it does not land.
    redis.call('SET', KEYS[2 + n + i], '0', 'PX', ARGV[7])
  end
  if not stamp or tonumber(stamp) >= tonumber(ARGV[4]) then
    redis.call('DEL', KEYS[2])
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
index_tags(3, 2 + n, tonumber(ARGV[2]))
return 1
