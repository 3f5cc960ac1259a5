--[[
  Write-through of a committed row version: lands unless a newer version was written (or
  committed elsewhere, see evict-older); the same version again carries the same row. The
  entry's own version counts too, so an evicted version floor does not let an older row replace
  a newer cached one.

  KEYS[1]   entry
  KEYS[2]   lock of the entry
  KEYS[3]   version floor of the entry
  KEYS[4..] tag indexes of the entry
  ARGV[1]   envelope (JSON, with its version in `g`)
  ARGV[2]   ttl, ms
  ARGV[3]   version
  ARGV[4]   version floor ttl, ms
  Returns 1 if written, 0 if a newer version holds.
]]
--@include index-tags
local written = tonumber(redis.call('GET', KEYS[3]) or '-1')
if written > tonumber(ARGV[3]) then return 0 end
local current = redis.call('GET', KEYS[1])
if current then
  local ok, envelope = pcall(cjson.decode, current)
  local held = ok and type(envelope) == 'table' and tonumber(envelope.g)
  if held and held > tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[2])
index_tags(4, #KEYS, tonumber(ARGV[2]))
return 1
