--[[
  Write-through of a committed row version: lands unless a newer version was written (or
  committed elsewhere, see evict-older); the same version again carries the same row. The
  entry's own version counts too, so an evicted version floor does not let an older row replace
  a newer cached one. With neither an entry nor a floor (never cached, or both evicted: under
  allkeys-* Redis cannot tell), nothing is known about newer versions: the version is recorded
  as the floor and no value is written (the next read loads the row); a running load's lock
  ends either way, so a value it read before this commit cannot land.

  The entry's tags are indexed beside it (index-tag-2.lua, in each tag's own slot).

  KEYS[1]   entry
  KEYS[2]   lock of the entry
  KEYS[3]   version floor of the entry
  ARGV[1]   envelope (JSON, with its version in `g`)
  ARGV[2]   ttl, ms
  ARGV[3]   version
  ARGV[4]   version floor ttl, ms
  Returns 1 if written, 0 if a newer version holds, 2 if nothing was known (floor set, no value).
]]
local floor = redis.call('GET', KEYS[3])
local current = redis.call('GET', KEYS[1])
if not floor and not current then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
  redis.call('DEL', KEYS[2])
  return 2
end
if floor and tonumber(floor) > tonumber(ARGV[3]) then return 0 end
if current then
  local ok, envelope = pcall(cjson.decode, current)
  local held = ok and type(envelope) == 'table' and tonumber(envelope.g)
  if held and held > tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[2])
return 1
