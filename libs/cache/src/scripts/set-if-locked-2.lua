--[[
  The end of a load: lands only if the load still holds its lock. A lock that is gone (released,
  expired, evicted, or deleted by an invalidation or a newer write) counts as "changed": nothing
  is written. The load's tags were checked and indexed before this runs (index-tag-2.lua): an
  invalidation of one of them after that check finds the entry in the index and deletes the lock.

  KEYS[1]  entry
  KEYS[2]  lock of the entry
  ARGV[1]  envelope (JSON)
  ARGV[2]  ttl, ms
  ARGV[3]  the lock's owner token
  Returns 1 if written, 0 if not.
]]
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
