-- Worker ARGV[2] gives job ARGV[3], which it holds under claim attempt ARGV[4], back to
-- the queue (it stops before the job ended: a drain): its entry is acknowledged and
-- deleted, it is queued at the end of its owner's line, and no worker holds the job until
-- the next claim (which gives it a new entry). Returns 'queued'; 'not-held' when the
-- worker does not hold it under that attempt (taken over meanwhile, ended, gone),
-- 'cancel' when its cancel was asked for (the worker ends it Canceled instead). Changes nothing but on 'queued'.
local node, job, attempt = ARGV[2], ARGV[3], ARGV[4]
local state = redis.call('HMGET', job_key(job), 'status', 'worker', 'attempt', 'cancel')
if not state[1] or TERMINAL[state[1]] or state[2] ~= node or state[3] ~= attempt then
  return 'not-held'
end
if state[4] == '1' then return 'cancel' end
undispatch(job)
redis.call('HDEL', job_key(job), 'worker')
enqueue(job, redis.call('HGET', job_key(job), 'okey'))
return 'queued'
