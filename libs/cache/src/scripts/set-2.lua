--[[
  A write of known truth (set, write of a loaded value without lock): it also ends any running
  load's lock, so an older load cannot land after it. The entry's tags are indexed beside it
  (index-tag-2.lua, in each tag's own slot).

  KEYS[1]  entry
  KEYS[2]  lock of the entry
  ARGV[1]  envelope (JSON)
  ARGV[2]  ttl, ms
  Returns 1.
]]
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
