-- Remove job ARGV[2] entirely: record, history, logs, index entries, count.
local job = ARGV[2]
local old = redis.call('HMGET', job_key(job), 'status', 'seq', 'okey', 'pipeline')
local status, okey = old[1], old[3]
unqueue(job)
drop_history(job, okey)
redis.call('DEL', logs_key(job), job_key(job))
for _, key in ipairs({'ended', 'ended-seq', 'expiring'}) do redis.call('ZREM', P .. key, job) end
if status then
  for _, o in ipairs({'all', okey}) do redis.call('ZREM', index_key(o), job) end
  index_status(job, old[2], okey, status, false)
  add_count(status, old[4], -1)
end
return status and 1 or 0
