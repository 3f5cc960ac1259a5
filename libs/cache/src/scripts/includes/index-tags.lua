-- index_tags(from, to, ttl): adds KEYS[1] (the entry) to each tag index in KEYS[from..to], scored
-- by when the entry expires, drops members that expired already (so an index stays proportional
-- to its live entries however often it is written), and keeps each index alive at least `ttl` ms.
local function index_tags(from, to, ttl)
  if from > to then return end
  local t = redis.call('TIME')
  local now = t[1] * 1000 + math.floor(t[2] / 1000)
  for i = from, to do
    redis.call('ZADD', KEYS[i], now + ttl, KEYS[1])
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
