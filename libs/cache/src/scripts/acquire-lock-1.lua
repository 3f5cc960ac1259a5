--[[
  Takes the load lock of an entry if nobody holds it, and arms the stamps of the load's tags: a
  stamp that does not exist yet is created (0: never invalidated), so that at the fill a missing
  stamp can only mean it was evicted or expired, which counts as "invalidated".

  KEYS[1]   lock
  KEYS[2..] tag stamps of the load's tags (known before it runs)
  ARGV[1]   owner token
  ARGV[2]   ttl, ms
  ARGV[3]   tag stamp ttl, ms
  Returns { 1 if taken else 0, Redis time in ms }: the time is when the load starts.
]]
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if ok then
  for i = 2, #KEYS do
    if not redis.call('SET', KEYS[i], '0', 'NX', 'PX', ARGV[3]) and redis.call('PTTL', KEYS[i]) < tonumber(ARGV[3]) then
      redis.call('PEXPIRE', KEYS[i], ARGV[3])
    end
  end
end
local t = redis.call('TIME')
return { ok and 1 or 0, t[1] * 1000 + math.floor(t[2] / 1000) }
