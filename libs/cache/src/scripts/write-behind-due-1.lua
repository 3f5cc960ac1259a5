--[[
  Claims up to ARGV[2] pending writes whose check is due on the queue Redis clock: each is pushed
  ARGV[3] ms into the future (a sweeper that dies half way leaves them to the next pass), and a
  member whose pending write is gone leaves the set. A member's pending hash is
  ARGV[1] .. its namespace (a derived key: single-node Redis, like the queue itself).

  KEYS[1]  due set
  ARGV[1]  pending hash prefix
  ARGV[2]  limit
  ARGV[3]  check again after, ms
  Returns a flat list: member, pending record, member, pending record...
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local members = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, member in ipairs(members) do
  local sep = string.find(member, ':', 1, true)
  local record = sep and redis.call('HGET', ARGV[1] .. string.sub(member, 1, sep - 1), string.sub(member, sep + 1))
  if record then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), member)
    out[#out + 1] = member
    out[#out + 1] = record
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
return out
