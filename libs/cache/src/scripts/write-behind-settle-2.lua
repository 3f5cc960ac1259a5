--[[
  The write of a version is done (persisted, or given up): it stops being pending and leaves the
  due set, unless a newer write of the key came meanwhile.

  KEYS[1]  pending hash of the namespace
  KEYS[2]  due set
  ARGV[1]  field: the key
  ARGV[2]  version
  ARGV[3]  due member: `namespace:key`
  Returns 1 if the pending write went, else 0.
]]
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.match(current, '^{"v":(%d+),') == ARGV[2] then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
