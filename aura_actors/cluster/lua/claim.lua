-- A worker takes up to ARGV[3] queued jobs (ARGV[2]: its name) from the dispatch queue.
-- A job is claimable when it has not ended, no worker holds it, and this entry is its
-- current one (a job handed back is Running, with a new entry). Any other entry (its job
-- gone, ended, held, or re-queued under a newer entry) is acknowledged and dropped, so a
-- job cancelled while queued never starts. Each claimed job's hash gets `worker` and its
-- claim attempt `attempt` (one more than the last: the fence its worker writes under);
-- returns {entry id, job id, attempt} per claimed job. (A cancel flag is only ever set
-- on a claimed job: the worker reads it once it listens for cancels, see _cancels.py.)
local worker = ARGV[2]
local want = tonumber(ARGV[3])
local claimed = {}
while #claimed < want do
  local reply = redis.call('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', want - #claimed,
    'STREAMS', DISPATCH, '>')
  if not reply or #reply[1][2] == 0 then break end
  for _, entry in ipairs(reply[1][2]) do
    local id, fields = entry[1], entry[2]
    local job = fields[2]
    local state = redis.call('HMGET', job_key(job), 'status', 'worker', 'entry')
    if state[1] and not TERMINAL[state[1]] and not state[2] and state[3] == id then
      local attempt = redis.call('HINCRBY', job_key(job), 'attempt', 1)
      redis.call('HSET', job_key(job), 'worker', worker)
      redis.call('ZREM', QUEUED, job)
      table.insert(claimed, {id, job, attempt})
    else
      redis.call('XACK', DISPATCH, GROUP, id)
      redis.call('XDEL', DISPATCH, id)
    end
  end
end
return claimed
