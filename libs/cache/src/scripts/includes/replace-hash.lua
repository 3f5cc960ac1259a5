-- replace_hash(ttl): KEYS[1] becomes the object whose fields and values are ARGV[3..] (none: it is
-- deleted), alive for `ttl` ms. One place for both writers of a whole object (set, fill).
local function replace_hash(ttl)
  redis.call('DEL', KEYS[1])
  if #ARGV > 2 then
    redis.call('HSET', KEYS[1], unpack(ARGV, 3))
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
end
