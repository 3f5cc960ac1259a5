--[[
  Arms the stamp of a tag a load is about to read under: a stamp that does not exist yet is
  created (0: never invalidated), so that when the load ends a missing stamp can only mean it was
  evicted or expired, which counts as "invalidated". Its time is taken on the tag's own node (on
  a cluster, another node than the lock's), so the check at the end compares times of one clock.

  KEYS[1]  tag stamp
  ARGV[1]  stamp ttl, ms
  Returns the Redis time in ms: the load starts after it, as far as this tag is concerned.
]]
if not redis.call('SET', KEYS[1], '0', 'NX', 'PX', ARGV[1]) and redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local t = redis.call('TIME')
return t[1] * 1000 + math.floor(t[2] / 1000)
