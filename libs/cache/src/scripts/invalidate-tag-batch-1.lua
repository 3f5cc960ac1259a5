--[[
  Takes up to ARGV[2] members off a tag index and deletes them with their locks. Batches keep
  each call short however large the tag.

  KEYS[1]  tag index
  ARGV[1]  key prefix (a lock is the prefix, `~lock:`, and the entry's id)
  ARGV[2]  batch size
  Returns how many entries were taken off.
]]
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[2])
if #popped == 0 then return 0 end
local keys = {}
for i = 1, #popped, 2 do
  keys[#keys + 1] = popped[i]
  keys[#keys + 1] = ARGV[1] .. '~lock:' .. string.sub(popped[i], #ARGV[1] + 1)
end
redis.call('UNLINK', unpack(keys))
return #popped / 2
