-- Apply one commit atomically: new jobs, snapshots, logs, events (ARGV: see _codec.py).
-- Everything is checked before the first write, so a refused commit changes nothing;
-- a script refused for OOM (this one has a shebang, so Redis checks before it runs)
-- changes nothing either. Without a node: returns 1 when applied, 0 when it already
-- was (a retry whose first reply was lost). In a cluster: '=' when applied with its ids
-- as they came, else the first of the new ids it gave them (below); a retry whose first
-- reply was lost gets that reply again.
local now = ARGV[2]
local max_events = tonumber(ARGV[3])
local i = 4

local function section(width)
  local items = {}
  local n = tonumber(ARGV[i])
  i = i + 1
  for k = 1, n do
    items[k] = {unpack(ARGV, i, i + width - 1)}
    i = i + width
  end
  return items
end

local created = section(6)
local snapshots = section(3)
local logs = section(2)
local events = section(6)
-- With the dispatch queue (a cluster's nodes): the committing node's name and the
-- commit's token, then the fences (job, claim attempt) of the jobs it writes as their
-- worker; else nil.
-- Then the admission limits ('' for none): jobs queued in the cluster, jobs one owner
-- may have Queued or Running.
local node, token = ARGV[i], ARGV[i + 1]
local fences = {}
local max_queued, max_per_owner
if node then
  i = i + 2
  for _, f in ipairs(section(2)) do fences[f[1]] = f[2] end
  max_queued, max_per_owner = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
end
local meta = P .. 'meta'
-- A cluster node's last applied commit: '<token> <reply>'. A node sends its commits one
-- at a time and sends a commit whose reply was lost again before any other, so its last
-- one is the only one it can send again.
local applied = node and P .. 'applied:' .. node

-- A retry of a cluster commit applied already (its reply was lost): the same reply.
if applied then
  local last = redis.call('GET', applied)
  if last then
    local space = string.find(last, ' ', 1, true)
    if space and string.sub(last, 1, space - 1) == token then
      return string.sub(last, space + 1)
    end
  end
end

-- A retry of this very commit: its newest event is in its job's stream already.
local function already_applied()
  local last = events[#events]
  local key = events_key(last[2])
  if redis.call('EXISTS', key) == 0 then return false end
  local info = redis.call('XINFO', 'STREAM', key)
  for k = 1, #info, 2 do
    if info[k] == 'last-generated-id' then return not id_greater(last[1], info[k + 1]) end
  end
  return false
end

-- Fencing (a cluster): a job a worker holds (its hash names `worker` and `attempt`) is
-- written only by that worker, under that claim attempt; a job nobody holds, by any node
-- without a fence. A commit writing any other job is refused whole, naming them all:
-- CLAIMED when each is a queued job another node tried to end (a cancel that lost the
-- race to a claim: ask its worker), else FENCED (a worker's job taken from it).
if node then
  local refused, seen, claimed, only_claimed = {}, {}, nil, true
  local function check(job, status)
    if seen[job] then return end
    seen[job] = true
    local old = redis.call('HMGET', job_key(job), 'status', 'worker', 'attempt')
    local fence = fences[job]
    if not old[1] or (fence and old[2] == node and old[3] == fence) or
        (not fence and not old[2]) then
      return
    end
    table.insert(refused, job)
    if not fence and old[2] ~= node and old[1] == 'Queued' and status and TERMINAL[status] then
      claimed = claimed or (job .. ' by ' .. old[2])
    else
      only_claimed = false
    end
  end
  for _, s in ipairs(snapshots) do check(s[1], s[2]) end
  for _, l in ipairs(logs) do check(l[1]) end
  for _, e in ipairs(events) do check(e[2]) end
  if #refused > 0 then
    local tail = ': nothing of this commit was applied; jobs ' .. cjson.encode(refused)
    if only_claimed then return redis.error_reply('CLAIMED job ' .. claimed .. tail) end
    return redis.error_reply('FENCED jobs held by another worker or claim attempt' .. tail)
  end
end

-- Ids strictly increasing from the newest stored one. Each node stamps its events from
-- its own clock, so in a cluster another node may have stored newer ids meanwhile: then
-- this commit's events get new ids here, consecutive after the newest stored one (or
-- from this commit's time, when later): <ms>-<c>, <ms>-<c+1>, ... The reply names the
-- first, and the node renames its events the same way before anyone sees them. A
-- snapshot that names one of them (its JSON opens with {"lastEventId":"<id>":
-- _codec.py puts it first) is renamed too. Without a node (one writer) such a
-- commit is refused whole instead.
local restamped = nil
if #events > 0 then
  local stored = redis.call('HGET', meta, 'last_event_id')
  local previous = stored
  for k, event in ipairs(events) do
    if previous and not id_greater(event[1], previous) then
      if node then
        restamped = true
        break
      end
      if k == 1 and not token and already_applied() then return 0 end
      return redis.error_reply('STALE event id ' .. event[1] .. ' is not greater than ' ..
        previous .. ': nothing of this commit was applied; newest stored ' .. (stored or '0-0'))
    end
    previous = event[1]
  end
  if restamped then
    local stored_ms, stored_c = parse_id(stored)
    local base_ms, base_c = math.floor(tonumber(now) * 1000), 0
    if base_ms <= stored_ms then base_ms, base_c = stored_ms, stored_c + 1 end
    local renamed = {}
    for k, event in ipairs(events) do
      local id = string.format('%d-%d', base_ms, base_c + k - 1)
      renamed[event[1]] = id
      event[1] = id
    end
    restamped = events[1][1]
    local function rename(snapshot)
      local old = string.match(snapshot, '^{"lastEventId":"([^"]*)"')
      local new = old and renamed[old]
      if not new then return snapshot end
      return '{"lastEventId":"' .. new .. '"' .. string.sub(snapshot, #old + 18)
    end
    for _, c in ipairs(created) do c[6] = rename(c[6]) end
    for _, s in ipairs(snapshots) do s[3] = rename(s[3]) end
  end
end
for _, job in ipairs(created) do
  if redis.call('EXISTS', job_key(job[1])) == 1 then
    return redis.error_reply('EXISTS job ' .. job[1] .. ': nothing of this commit was applied')
  end
end

-- Admission (a cluster): a new job is refused when its owner has max_per_owner jobs
-- Queued or Running (the status indexes, every node's), or when max_queued jobs wait in
-- the cluster's queue, counting those this commit admits before it. A commit creating
-- any refused job is refused whole, naming each with its code (the runtime drops them).
if node and (max_queued or max_per_owner) then
  local refused, any, waiting, owned = {}, false, nil, {}
  for _, c in ipairs(created) do
    local job, okey, status = c[1], c[2], c[4]
    if not TERMINAL[status] then
      if max_per_owner and owned[okey] == nil then
        owned[okey] = redis.call('ZCARD', index_key(okey, 'Queued')) +
          redis.call('ZCARD', index_key(okey, 'Running'))
      end
      if status == 'Queued' and waiting == nil then waiting = redis.call('ZCARD', QUEUED) end
      if max_per_owner and owned[okey] >= max_per_owner then
        refused[job], any = 'user_quota_exceeded', true
      elseif max_queued and status == 'Queued' and waiting >= max_queued then
        refused[job], any = 'queue_full', true
      else
        if owned[okey] then owned[okey] = owned[okey] + 1 end
        if status == 'Queued' then waiting = waiting + 1 end
      end
    end
  end
  if any then
    return redis.error_reply('ADMISSION ' .. cjson.encode(refused) ..
      ': refused by the cluster limits; nothing of this commit was applied')
  end
end

local function finished(job, seq)
  redis.call('HSET', job_key(job), 'finished', now)
  redis.call('ZADD', P .. 'ended', now, job)
  redis.call('ZADD', P .. 'ended-seq', seq, job)
  redis.call('ZADD', P .. 'expiring', now, job)
end

for _, c in ipairs(created) do
  local job, okey, owner, status, pipeline, snapshot = unpack(c)
  local seq = redis.call('INCR', P .. 'seq')
  redis.call('HSET', job_key(job), 'seq', seq, 'okey', okey, 'status', status,
    'pipeline', pipeline, 'snapshot', snapshot)
  if okey ~= 'none' then redis.call('HSET', job_key(job), 'owner', owner) end
  redis.call('ZADD', index_key('all'), seq, job)
  redis.call('ZADD', index_key(okey), seq, job)
  index_status(job, seq, okey, status, true)
  add_count(status, pipeline, 1)
  if TERMINAL[status] then finished(job, seq) end
  if node and status == 'Queued' then
    enqueue(job, okey)
  end
end

for _, s in ipairs(snapshots) do
  local job, status, snapshot = unpack(s)
  local old = redis.call('HMGET', job_key(job), 'status', 'seq', 'okey', 'pipeline')
  if old[1] then
    redis.call('HSET', job_key(job), 'status', status, 'snapshot', snapshot)
    if old[1] ~= status then
      index_status(job, old[2], old[3], old[1], false)
      index_status(job, old[2], old[3], status, true)
      add_count(old[1], old[4], -1)
      add_count(status, old[4], 1)
    end
    if TERMINAL[status] then finished(job, old[2]) end
    -- Ended: its dispatch entry goes (acknowledged) with its terminal record. A job
    -- ended before it was claimed is never given to a worker.
    if node and TERMINAL[status] then undispatch(job) end
  end
end

for _, l in ipairs(logs) do
  if redis.call('EXISTS', job_key(l[1])) == 1 then redis.call('SET', logs_key(l[1]), l[2]) end
end

-- Events: a run of step-progress keeps its newest; each job keeps at most max_events.
local known = {}   -- job -> its okey when the job exists, false when it does not
local tails = {}   -- job -> {id, type} of its newest retained event, false when none
local touched = {} -- jobs with new events, in order
local carried = {} -- the stored events in commit (id) order, {id, job, okey, type, data} each
for _, e in ipairs(events) do
  local id, job, okey, owner, etype, data = unpack(e)
  if known[job] == nil then
    known[job] = redis.call('EXISTS', job_key(job)) == 1 and okey
  end
  if known[job] then
    local stream, ostream = events_key(job), owner_events_key(okey)
    if tails[job] == nil then
      local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
      tails[job] = #newest > 0 and {newest[1][1], newest[1][2][2]} or false
      table.insert(touched, job)
    end
    local tail = tails[job]
    if etype == 'step-progress' and tail and tail[2] == 'step-progress' then
      redis.call('XDEL', stream, tail[1])
      redis.call('XDEL', ostream, tail[1])
    end
    if okey == 'none' then
      redis.call('XADD', stream, id, 't', etype, 'd', data)
    else
      redis.call('XADD', stream, id, 't', etype, 'd', data, 'o', owner)
    end
    redis.call('XADD', ostream, id, 'j', job, 't', etype, 'd', data)
    tails[job] = {id, etype}
    carried[#carried + 1] = {id, job, okey, etype, data}
  end
end
for _, job in ipairs(touched) do
  local stream = events_key(job)
  local excess = redis.call('XLEN', stream) - max_events
  if excess > 0 then
    local dropped = redis.call('XRANGE', stream, '-', '+', 'COUNT', excess)
    local ids = {}
    for k, entry in ipairs(dropped) do ids[k] = entry[1] end
    xdel(stream, ids)
    xdel(owner_events_key(known[job]), ids)
    redis.call('HSET', job_key(job), 'truncated', ids[#ids])
  end
end

-- In a cluster, hand every node's live feed the events of this commit (after the writes
-- above, so a node that reads on this message finds them stored): JSON
-- [<committing node>, [[<id>, <job>, <okey>, <type>, <data>], ...]], in id order (an
-- owner's subscribers take them in that order), a run of step-progress whole
-- (subscribers coalesce it themselves).
if node and #carried > 0 then
  redis.call('PUBLISH', P .. 'live', cjson.encode({node, carried}))
end

if #events > 0 then
  redis.call('HSET', meta, 'last_event_id', events[#events][1])
else
  redis.call('HSET', meta, 'probed_at', now) -- an empty commit probes that writes work
end
-- A cluster's reply: the first new id when the events were given new ids, else '='.
if node then
  local reply = restamped or '='
  redis.call('SET', applied, token .. ' ' .. reply)
  return reply
end
return 1
