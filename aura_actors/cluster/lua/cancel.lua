-- Ask for job ARGV[2] to be cancelled where it runs: set its cancel flag and publish its
-- id on the cancel channel ARGV[3]. Returns the worker holding it, or false when the job
-- is missing, ended or not claimed (the caller ends an unclaimed queued job itself).
local job = ARGV[2]
local state = redis.call('HMGET', job_key(job), 'status', 'worker')
if not state[1] or TERMINAL[state[1]] or not state[2] then return false end
redis.call('HSET', job_key(job), 'cancel', '1')
redis.call('PUBLISH', ARGV[3], job)
return state[2]
