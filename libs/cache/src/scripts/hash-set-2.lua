--[[
  Replaces a whole hash object (known truth) and stamps its tombstone with Redis time, so that a
  fill that read the database before this write cannot land the older object after it.

  KEYS[1]  hash object
  KEYS[2]  its tombstone
  ARGV[1]  ttl, ms
  ARGV[2]  tombstone ttl, ms
  ARGV[3..] field, value (JSON), field, value... (none: the object is deleted)
  Returns 1.
]]
--@include replace-hash
local t = redis.call('TIME')
redis.call('SET', KEYS[2], t[1] * 1000 + math.floor(t[2] / 1000), 'PX', ARGV[2])
replace_hash(ARGV[1])
return 1
