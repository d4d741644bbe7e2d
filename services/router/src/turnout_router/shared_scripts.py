"""The shared store's server-side scripts (Redis / Valkey Lua, run atomically).

Rate limits use GCRA (the generic cell rate algorithm): one number per (subject, limit),
the *theoretical arrival time* (TAT) at which the bucket would be full again. It is the
token bucket the router keeps locally (capacity = the per-minute limit, refilled
linearly), so a shared limit and the per-replica fallback behave the same; it weighs a
request by its tokens for tpm (a sliding-window log would store one entry per request and
sum them), costs O(1) memory and time per limit, and never resets in a burst at a window's
edge (a fixed window lets 2x through across the boundary). Time is the server's (``TIME``),
so replicas' clocks do not matter.

Budgets: per subject a hash (``seq``, ``rem``, ``spent`` of the newest credit event any
replica has applied; ``unrefl``: cost served by every replica that metering's events do
not reflect yet; ``reserved``: estimates of the requests in flight) and a sorted set of
the reservations themselves (member ``<request id>:<amount>``, score = expiry) so a
replica that dies mid-request leaks nothing for longer than the request timeout.

Every key of one request carries the user's hash tag (``{<user id>}``), so a script only
touches one slot and the scripts run on Redis Cluster too.
"""

ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local nr, nb = tonumber(ARGV[1]), tonumber(ARGV[2])
local member, est, ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local W = 60
local out = {0}
local tats = {}
for i = 1, nr do
  local limit, amount = tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i])
  local per = W / limit
  local tat = now
  local v = redis.call('GET', KEYS[i])
  if v then tat = math.max(now, tonumber(v)) end
  local new = tat + amount * per
  if new - now > W then
    return {1, i, tostring(new - now - W)}
  end
  tats[i] = new
  out[#out + 1] = tostring(limit - (new - now) / per)
  out[#out + 1] = tostring(new - now)
end
local b = 5 + 2 * nr
local held = {}
for j = 1, nb do
  local h, z = KEYS[nr + j], KEYS[nr + nb + j]
  local o = b + 3 * (j - 1)
  local seq, rem, spent = tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  local st = redis.call('HMGET', h, 'seq', 'rem', 'spent', 'unrefl', 'reserved')
  local unrefl, reserved = 0, 0
  if st[1] then
    unrefl, reserved = tonumber(st[4]) or 0, tonumber(st[5]) or 0
    if seq > tonumber(st[1]) then
      local d = spent - tonumber(st[3])
      if d > 0 then unrefl = math.max(0, unrefl - d) end
      redis.call('HSET', h, 'seq', ARGV[o + 1], 'rem', ARGV[o + 2], 'spent', ARGV[o + 3],
        'unrefl', tostring(unrefl))
    else
      rem = tonumber(st[2])
    end
  else
    redis.call('HSET', h, 'seq', ARGV[o + 1], 'rem', ARGV[o + 2], 'spent', ARGV[o + 3],
      'unrefl', '0', 'reserved', '0')
  end
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #gone > 0 then
    for _, m in ipairs(gone) do
      reserved = reserved - tonumber(string.match(m, '[^:]+$'))
    end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    if redis.call('ZCARD', z) == 0 or reserved < 0 then reserved = 0 end
    redis.call('HSET', h, 'reserved', tostring(reserved))
  end
  if rem - unrefl - reserved - est < 0 then
    return {2, j, tostring(math.max(rem - unrefl, 0))}
  end
  held[j] = reserved
end
for i = 1, nr do
  redis.call('SET', KEYS[i], tostring(tats[i]), 'PX', math.ceil((tats[i] - now) * 1000) + 1000)
end
for j = 1, nb do
  local h, z = KEYS[nr + j], KEYS[nr + nb + j]
  redis.call('HSET', h, 'reserved', tostring(held[j] + est))
  redis.call('ZADD', z, now + ttl, member)
  redis.call('EXPIRE', h, 172800)
  redis.call('EXPIRE', z, 172800)
end
return out
"""
"""KEYS: rate keys (nr), budget hashes (nb), reservation sets (nb). ARGV: nr, nb, member,
estimate, reservation ttl, (limit, amount) per rate key, (seq, remaining, spent) per budget.
Returns ``{0, remaining, reset, ...}`` per rate key, ``{1, i, wait}`` when rate key i
refuses, ``{2, j, room}`` when budget j does; a refusal takes nothing."""

SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local nr, nb = tonumber(ARGV[1]), tonumber(ARGV[2])
local member, amount, cost = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 1, nr do
  local limit, delta = tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i])
  local v = redis.call('GET', KEYS[i])
  if v then
    local per = 60 / limit
    local tat = math.min(now + 120, math.max(now, tonumber(v)) + delta * per)
    if tat > now then
      redis.call('SET', KEYS[i], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
    else
      redis.call('DEL', KEYS[i])
    end
  end
end
for j = 1, nb do
  local h, z = KEYS[nr + j], KEYS[nr + nb + j]
  if redis.call('ZREM', z, member) == 1 then
    local r = tonumber(redis.call('HGET', h, 'reserved') or '0') - amount
    if r < 1e-12 or redis.call('ZCARD', z) == 0 then r = 0 end
    redis.call('HSET', h, 'reserved', tostring(r))
  end
  if cost > 0 and redis.call('EXISTS', h) == 1 then
    redis.call('HINCRBYFLOAT', h, 'unrefl', tostring(cost))
  end
end
return 0
"""
"""KEYS as :data:`ADMIT`'s. ARGV: nr, nb, member, reserved amount, actual cost, (limit,
token delta) per rate key: settles tpm to the real tokens (a bucket may go into debt, at
most one more window), releases the reservation and counts the cost as unreflected."""
