-- Drop the histories of jobs that ended before ARGV[2] (at most ARGV[3] of them);
-- their records stay, marked expired. Returns how many were dropped.
local jobs = redis.call('ZRANGEBYSCORE', P .. 'expiring', '-inf', '(' .. ARGV[2],
  'LIMIT', 0, tonumber(ARGV[3]))
for _, job in ipairs(jobs) do
  local okey = redis.call('HGET', job_key(job), 'okey')
  drop_history(job, okey)
  if okey then redis.call('HSET', job_key(job), 'expired', '1') end
  redis.call('ZREM', P .. 'expiring', job)
end
return #jobs
