-- Shared by every script of aura-actors (prepended to each): key names under the
-- prefix P (aura_actors/cluster/_keys.py builds the same), ids, and dropping a history.
local P = ARGV[1]
if string.sub(P, -1) ~= ':' then P = P .. ':' end

local function job_key(job) return P .. 'job:' .. job end
local function events_key(job) return P .. 'events:' .. job end
local function logs_key(job) return P .. 'logs:' .. job end
local function owner_events_key(okey) return P .. 'owner-events:' .. okey end
local function index_key(okey, status)
  if status then return P .. 'jobs:' .. okey .. ':' .. status end
  return P .. 'jobs:' .. okey
end

local TERMINAL = {Done = true, Failed = true, Canceled = true}

-- The dispatch queue: a stream of queued jobs read by the workers' consumer group.
local DISPATCH = P .. 'dispatch'
local GROUP = 'workers'

-- Workers: each one's heartbeat key (alive while it exists) and the set of their names.
local function heartbeat_key(node) return P .. 'worker:' .. node end
local WORKERS = P .. 'workers'

-- The queue: a job queued and held by no worker waits in its owner's line (a sorted set
-- by queue order), the owners with waiting jobs take turns in the ring (a list), and
-- QUEUED holds every waiting job (what --max-queued-jobs bounds). A job gets its dispatch
-- entry when a worker claims it: the entry is then pending for that worker.
local QUEUED = P .. 'queued'
local RING = P .. 'ring'
local WAKE = P .. 'wake'
local function line_key(okey) return P .. 'line:' .. okey end

-- Queue a job of owner okey at the end of its owner's line; wake the waiting workers.
local function enqueue(job, okey)
  local order = redis.call('INCR', P .. 'queue-seq')
  redis.call('ZADD', QUEUED, order, job)
  local line = line_key(okey)
  if redis.call('ZADD', line, order, job) == 1 and redis.call('ZCARD', line) == 1 then
    redis.call('RPUSH', RING, okey)
  end
  redis.call('XADD', WAKE, 'MAXLEN', '~', 100, '*', 'j', job)
end

-- Take a job out of the queue, if it waits there (an owner left with none leaves the ring).
local function unqueue(job)
  if redis.call('ZREM', QUEUED, job) == 0 then return end
  local okey = redis.call('HGET', job_key(job), 'okey')
  if okey and redis.call('ZREM', line_key(okey), job) == 1 and
      redis.call('ZCARD', line_key(okey)) == 0 then
    redis.call('LREM', RING, 0, okey)
  end
end

-- Take a job out of the queue, and its entry out of the dispatch stream (acknowledged
-- and deleted), if it has one.
local function undispatch(job)
  unqueue(job)
  local entry = redis.call('HGET', job_key(job), 'entry')
  if entry then
    redis.call('XACK', DISPATCH, GROUP, entry)
    redis.call('XDEL', DISPATCH, entry)
    redis.call('HDEL', job_key(job), 'entry')
  end
end

-- Event ids '<millis>-<counter>' as two numbers (millis fit a double exactly).
local function parse_id(text)
  local dash = string.find(text, '-', 1, true)
  return tonumber(string.sub(text, 1, dash - 1)), tonumber(string.sub(text, dash + 1))
end

local function id_greater(a, b)
  local am, ac = parse_id(a)
  local bm, bc = parse_id(b)
  return am > bm or (am == bm and ac > bc)
end

-- XDEL ids from a stream, a chunk at a time (unpack has a limit).
local function xdel(key, ids)
  for start = 1, #ids, 1000 do
    redis.call('XDEL', key, unpack(ids, start, math.min(start + 999, #ids)))
  end
end

-- Remove a job's history: its stream, and its entries in its owner's stream.
local function drop_history(job, okey)
  local key = events_key(job)
  local entries = redis.call('XRANGE', key, '-', '+')
  if okey and #entries > 0 then
    local ids = {}
    for i, entry in ipairs(entries) do ids[i] = entry[1] end
    xdel(owner_events_key(okey), ids)
  end
  redis.call('DEL', key)
end

-- Put a job in (add) or take it out of the status indexes of its owner and of all.
local function index_status(job, seq, okey, status, add)
  for _, o in ipairs({'all', okey}) do
    if add then
      redis.call('ZADD', index_key(o, status), seq, job)
    else
      redis.call('ZREM', index_key(o, status), job)
    end
  end
end

local function add_count(status, pipeline, by)
  local field = status .. '\n' .. pipeline
  if redis.call('HINCRBY', P .. 'counts', field, by) <= 0 then
    redis.call('HDEL', P .. 'counts', field)
  end
end
