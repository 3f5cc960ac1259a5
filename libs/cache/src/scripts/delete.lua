--[[
  Deletes entries and the locks of their running loads.

  KEYS  (entry, lock) pairs, all of one hash slot (the caller groups them)
  Returns how many entries were deleted.
]]
local deleted = 0
for i = 1, #KEYS, 2 do
  deleted = deleted + redis.call('UNLINK', KEYS[i])
  redis.call('UNLINK', KEYS[i + 1])
end
return deleted
