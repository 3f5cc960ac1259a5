--[[
  Stamps a tag with Redis time: loads that started before it must not land with this tag.

  KEYS[1]  tag stamp
  ARGV[1]  stamp ttl, ms
  Returns 1.
]]
local t = redis.call('TIME')
redis.call('SET', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000), 'PX', ARGV[1])
return 1
