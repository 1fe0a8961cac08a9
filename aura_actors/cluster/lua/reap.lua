-- Worker ARGV[2] takes over jobs of worker ARGV[3], if ARGV[3] has no heartbeat: up to
-- ARGV[5] of its pending dispatch entries idle at least ARGV[4] ms. Atomic, so of two
-- reapers exactly one takes each job (the other finds it held by the first, and its
-- entry no longer pending for the dead one; the minimum idle is a second guard: XCLAIM
-- resets it). A taken job's entry is claimed by ARGV[2] and its hash moves to ARGV[2]
-- with the next claim attempt (the old worker's writes are fenced off from then on).
-- An entry whose job ended or is gone is acknowledged and dropped; one whose job another
-- worker holds (per its hash) is handed to that worker's pending list. Once the dead
-- worker has nothing pending it leaves the group and the workers set.
-- Returns {{entry, job, attempt}...}, more (1: there may be more to take), removed (1|0).
local me, dead = ARGV[2], ARGV[3]
local min_idle, count = tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('EXISTS', heartbeat_key(dead)) == 1 then return {{}, 0, 0} end
local taken = {}
local pending = {}
if redis.call('EXISTS', DISPATCH) == 1 then
  local reply = redis.pcall('XPENDING', DISPATCH, GROUP, 'IDLE', min_idle, '-', '+', count, dead)
  if not reply.err then pending = reply end
end
for _, p in ipairs(pending) do
  local id = p[1]
  local rows = redis.call('XRANGE', DISPATCH, id, id)
  local job = #rows > 0 and rows[1][2][2] or nil
  local state = {}
  if job then state = redis.call('HMGET', job_key(job), 'status', 'worker', 'entry') end
  if not state[1] or TERMINAL[state[1]] or state[3] ~= id then
    redis.call('XACK', DISPATCH, GROUP, id)
    redis.call('XDEL', DISPATCH, id)
  elseif state[2] and state[2] ~= dead then
    redis.call('XCLAIM', DISPATCH, GROUP, state[2], 0, id, 'JUSTID')
  elseif #redis.call('XCLAIM', DISPATCH, GROUP, me, min_idle, id, 'JUSTID') == 1 then
    local attempt = redis.call('HINCRBY', job_key(job), 'attempt', 1)
    redis.call('HSET', job_key(job), 'worker', me)
    table.insert(taken, {id, job, attempt})
  end
end
local removed = 0
if #pending < count then
  local left = {}
  if redis.call('EXISTS', DISPATCH) == 1 then
    left = redis.pcall('XPENDING', DISPATCH, GROUP, '-', '+', 1, dead)
  end
  if left.err or #left == 0 then
    if not left.err and redis.call('EXISTS', DISPATCH) == 1 then
      redis.call('XGROUP', 'DELCONSUMER', DISPATCH, GROUP, dead)
    end
    redis.call('SREM', WORKERS, dead)
    removed = 1
  end
end
return {taken, #pending == count and 1 or 0, removed}
