--[[
  A change committed elsewhere, with the version it produced: raises each entry's version floor
  (older write-throughs arriving later are refused) and deletes the entry unless it already
  holds that version or a newer one; ends running loads either way.

  KEYS      (entry, lock, version floor) triples, n of them, all of one hash slot
  ARGV[1..n] the versions, one per triple
  ARGV[n+1]  version floor ttl, ms
  Returns how many entries were deleted.
]]
local deleted = 0
local n = #KEYS / 3
for i = 1, n do
  local entry, lock, floor = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local version = tonumber(ARGV[i])
  if version > tonumber(redis.call('GET', floor) or '-1') then redis.call('SET', floor, ARGV[i], 'PX', ARGV[n + 1]) end
  local text = redis.call('GET', entry)
  if text then
    local ok, envelope = pcall(cjson.decode, text)
    local held = ok and type(envelope) == 'table' and tonumber(envelope.g)
    if not held or held < version then deleted = deleted + redis.call('UNLINK', entry) end
  end
  redis.call('UNLINK', lock)
end
return deleted
