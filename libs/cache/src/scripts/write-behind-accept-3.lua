--[[
  Accepts a write-behind write in one step: takes the next version of the key and makes the value
  its pending write. The version is the queue Redis clock in µs, above the key's last version
  (even if the clock stepped back) and above the producer's floor (every version it has seen,
  e.g. from a fallback write). The key also enters the due set, so that a sweeper finds a pending
  write whose job was never added (the producer timed out between this and the job add).
  A pending record is `{"v":<version>,"e":<entity>,"i":<id>,"value":<value>}`, `v` first so that
  scripts read it without decoding (records written up to 0.2 hold only `v` and `value`).

  KEYS[1]  version of the key
  KEYS[2]  pending hash of the namespace
  KEYS[3]  due set
  ARGV[1]  field: the key
  ARGV[2]  the record after its version: `"e":..,"i":..,"value":..`
  ARGV[3]  floor, µs
  ARGV[4]  due member: `namespace:key`
  ARGV[5]  check after, ms
  Returns { version, queue clock in µs }, as text (exact beyond 2^31).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local v = now
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if last >= v then v = last + 1 end
local floor = tonumber(ARGV[3])
if floor > v then v = floor end
local version = string.format('%.0f', v)
redis.call('SET', KEYS[1], version)
redis.call('HSET', KEYS[2], ARGV[1], '{"v":' .. version .. ',' .. ARGV[2] .. '}')
redis.call('ZADD', KEYS[3], math.floor(now / 1000) + tonumber(ARGV[5]), ARGV[4])
return { version, string.format('%.0f', now) }
