-- Up to ARGV[4] jobs of okey ARGV[2] (or 'all') with seq < ARGV[3] ('+inf': any),
-- newest first; statuses ARGV[5..] (none: any). Returns each job's record fields
-- (see _codec.RECORD_FIELDS), 7 values per job, in one atomic read.
local before = ARGV[3]
if before ~= '+inf' then before = '(' .. before end
local limit = tonumber(ARGV[4])
local keys = {}
if #ARGV < 5 then
  keys[1] = index_key(ARGV[2])
else
  for k = 5, #ARGV do table.insert(keys, index_key(ARGV[2], ARGV[k])) end
end
local found = {}
for _, key in ipairs(keys) do
  local page = redis.call('ZREVRANGEBYSCORE', key, before, '-inf', 'WITHSCORES',
    'LIMIT', 0, limit)
  for k = 1, #page, 2 do table.insert(found, {page[k], tonumber(page[k + 1])}) end
end
table.sort(found, function(a, b) return a[2] > b[2] end)
local out = {}
for k = 1, math.min(limit, #found) do
  local values = redis.call('HMGET', job_key(found[k][1]), 'seq', 'okey', 'owner', 'snapshot',
    'expired', 'truncated', 'finished')
  for v = 1, 7 do table.insert(out, values[v] or false) end
end
return out
