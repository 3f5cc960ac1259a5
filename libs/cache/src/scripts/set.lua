--[[
  A write of known truth (set, write of a loaded value without lease): it also ends any running
  load's lock, so an older load cannot land after it.

  KEYS[1]   entry
  KEYS[2]   lock of the entry
  KEYS[3..] tag indexes of the entry
  ARGV[1]   envelope (JSON)
  ARGV[2]   ttl, ms
  Returns 1.
]]
--@include index-tags
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
index_tags(3, #KEYS, tonumber(ARGV[2]))
return 1
