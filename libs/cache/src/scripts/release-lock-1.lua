--[[
  Releases the lock if its owner still holds it (compare and delete).

  KEYS[1]  lock
  ARGV[1]  owner token
  Returns 1 if released, 0 if it was not ours.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
