--[[
  Extends the lock while its owner's load runs.

  KEYS[1]  lock
  ARGV[1]  owner token
  ARGV[2]  ttl, ms
  Returns 1 if extended, 0 if the lock is no longer ours.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
