-- The workers other than ARGV[2] without a heartbeat: consumers of the dispatch group
-- (they may hold jobs) and names in the workers set. Read-only.
local me = ARGV[2]
local names = {}
local consumers = redis.pcall('XINFO', 'CONSUMERS', DISPATCH, GROUP)
if not consumers.err then
  for _, c in ipairs(consumers) do
    for k = 1, #c, 2 do
      if c[k] == 'name' then names[c[k + 1]] = true end
    end
  end
end
for _, name in ipairs(redis.call('SMEMBERS', WORKERS)) do names[name] = true end
local dead = {}
for name in pairs(names) do
  if name ~= me and redis.call('EXISTS', heartbeat_key(name)) == 0 then
    table.insert(dead, name)
  end
end
table.sort(dead)
return dead
