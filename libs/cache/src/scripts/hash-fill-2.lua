--[[
  Fills a hash object unless it was deleted (or updated while absent) since the fill started: a
  database read that raced a delete must not bring the object back. The tombstone was armed when
  the fill began: a missing one (evicted, expired) counts as a delete.

  KEYS[1]  hash object
  KEYS[2]  its tombstone
  ARGV[1]  when the fill started (Redis time, ms)
  ARGV[2]  ttl, ms
  ARGV[3..] field, value (JSON), field, value...
  Returns 1 if filled, 0 if a delete came first.
]]
--@include replace-hash
local deleted = redis.call('GET', KEYS[2])
if not deleted or tonumber(deleted) >= tonumber(ARGV[1]) then return 0 end
replace_hash(ARGV[2])
return 1
