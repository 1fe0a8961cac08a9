-- A worker takes up to ARGV[3] queued jobs (ARGV[2]: its name), the owners with waiting
-- jobs in turn (the ring): each turn takes the head of the next owner's line, and that
-- owner goes to the ring's end while it has more waiting. A job taken is claimable when
-- it has not ended and no worker holds it (else it is skipped: a job ended while queued
-- never starts). Each claimed job gets a dispatch entry, read at once into this worker's
-- pending list (how the reaper and a restart under its name find it), and its hash gets
-- `entry`, `worker` and its claim attempt `attempt` (one more than the last: the fence
-- its worker writes under); returns {entry id, job id, attempt} per claimed job, in
-- claim order. (A cancel flag is only ever set on a claimed job: the worker reads it
-- once it listens for cancels, see _cancels.py.)
local worker = ARGV[2]
local want = tonumber(ARGV[3])
-- The group first (every write below must succeed once one is made).
local groups = redis.pcall('XINFO', 'GROUPS', DISPATCH)
if groups.err or #groups == 0 then
  redis.call('XGROUP', 'CREATE', DISPATCH, GROUP, '0', 'MKSTREAM')
end

-- Read the new entry `entry` into this worker's pending list. Every entry is read as it is
-- added, so it is the oldest unread one; an older unread one (queued by an earlier
-- version at its job's creation) is dropped, its job queued again if that was its entry.
local function deliver(entry)
  while true do
    local reply = redis.call('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', 1,
      'STREAMS', DISPATCH, '>')
    local id, fields = reply[1][2][1][1], reply[1][2][1][2]
    if id == entry then return end
    local job = fields[2]
    local state = redis.call('HMGET', job_key(job), 'status', 'worker', 'entry', 'okey')
    redis.call('XACK', DISPATCH, GROUP, id)
    redis.call('XDEL', DISPATCH, id)
    if state[1] and not TERMINAL[state[1]] and not state[2] and state[3] == id then
      redis.call('HDEL', job_key(job), 'entry')
      enqueue(job, state[4])
    end
  end
end

local claimed = {}
while #claimed < want do
  local okey = redis.call('LPOP', RING)
  if not okey then break end
  local line = line_key(okey)
  local head = redis.call('ZPOPMIN', line)
  if redis.call('ZCARD', line) > 0 then redis.call('RPUSH', RING, okey) end
  local job = head[1]
  if job then
    redis.call('ZREM', QUEUED, job)
    local state = redis.call('HMGET', job_key(job), 'status', 'worker')
    if state[1] and not TERMINAL[state[1]] and not state[2] then
      local entry = redis.call('XADD', DISPATCH, '*', 'j', job)
      deliver(entry)
      local attempt = redis.call('HINCRBY', job_key(job), 'attempt', 1)
      redis.call('HSET', job_key(job), 'worker', worker, 'entry', entry)
      table.insert(claimed, {entry, job, attempt})
    end
  end
end
return claimed
