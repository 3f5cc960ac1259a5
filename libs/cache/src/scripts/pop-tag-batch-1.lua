--[[
  Takes up to ARGV[1] members (entry keys) off a tag index; the caller deletes them with their
  locks, in their own slots. Batches keep each call short however large the tag.

  KEYS[1]  tag index
  ARGV[1]  batch size
  Returns the entry keys taken off.
]]
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
local members = {}
for i = 1, #popped, 2 do members[#members + 1] = popped[i] end
return members
