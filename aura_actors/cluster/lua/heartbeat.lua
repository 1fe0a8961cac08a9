-- Worker ARGV[2] is alive for ARGV[3] more milliseconds: its heartbeat key (holding the
-- Redis time it was sent, for people reading it) expires then unless sent again.
local node = ARGV[2]
local now = redis.call('TIME')
redis.call('SET', heartbeat_key(node), string.format('%d.%06d', now[1], now[2]),
  'PX', tonumber(ARGV[3]))
redis.call('SADD', WORKERS, node)
return 1
