--[[
  Updates one field of a cached hash object. HSET leaves the key's TTL alone, so the object keeps
  its expiry; the EXISTS check stops it from creating a one-field object that would never expire.
  The tombstone is stamped with Redis time either way: a fill that read the database before this
  update must not land the old field.

  KEYS[1]  hash object
  KEYS[2]  its tombstone
  ARGV[1]  field
  ARGV[2]  value (JSON)
  ARGV[3]  tombstone ttl, ms
  Returns 1 if updated, 0 if the object was not cached.
]]
local t = redis.call('TIME')
redis.call('SET', KEYS[2], t[1] * 1000 + math.floor(t[2] / 1000), 'PX', ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
