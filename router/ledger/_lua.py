"""The Redis ledger's scripts, shared by the sync and async clients.

Each script runs atomically on the server, so "check every line, then add to every line" cannot
interleave with another instance's. Per line there are three keys (all passed in KEYS, so the
scripts stay valid on Redis Cluster; the ``{ledger}`` hash tag keeps them in one slot):

- ``spent``: integer nano-dollars settled in the period;
- ``zset``: hold id -> expires_at, so expired holds are found with one range query;
- ``hash``: hold id -> nano-dollars reserved, plus ``~sum`` (no hex id can be ``~sum``), their total.

Time comes from the caller (ARGV ``now``), never from the server: tests inject a clock, and a
fleet's reservations expire by the same clock their ttl was computed with. Integers are written
back with ``%d``: Lua numbers are doubles, which Redis would otherwise print as ``1e+15``.
"""

from __future__ import annotations

from typing import Final

_PURGE: Final = """
local function purge(zkey, hkey, now)
  local dead = redis.call('ZRANGEBYSCORE', zkey, '-inf', now)
  if #dead == 0 then return end
  local freed = 0
  for _, id in ipairs(dead) do
    local amount = redis.call('HGET', hkey, id)
    if amount then
      freed = freed + tonumber(amount)
      redis.call('HDEL', hkey, id)
    end
  end
  redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now)
  if freed ~= 0 then redis.call('HINCRBY', hkey, '~sum', string.format('%d', -freed)) end
end

local function drop(zkey, hkey, id)
  local amount = redis.call('HGET', hkey, id)
  if amount then
    redis.call('HDEL', hkey, id)
    redis.call('ZREM', zkey, id)
    redis.call('HINCRBY', hkey, '~sum', string.format('%d', -tonumber(amount)))
  end
end

local function figures(skey, hkey)
  return tonumber(redis.call('GET', skey) or '0'), tonumber(redis.call('HGET', hkey, '~sum') or '0')
end
"""

# ARGV: id, amount (nanos), expires_at, now, keep_s, then one limit (nanos) per line.
# Returns {0} when reserved, or {i, spent, reserved} for the first line i that refused.
RESERVE: Final = (
    _PURGE
    + """
local id, amount, expires, now = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local keep = tonumber(ARGV[5])
local n = #KEYS / 3
for i = 1, n do
  local s, z, h = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  purge(z, h, now)
  local spent, reserved = figures(s, h)
  if spent + reserved + amount > tonumber(ARGV[5 + i]) then
    return {i, spent, reserved}
  end
end
local ttl = math.ceil(tonumber(expires) - tonumber(now)) + keep
for i = 1, n do
  local z, h = KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('ZADD', z, expires, id)
  redis.call('HSET', h, id, ARGV[2])
  redis.call('HINCRBY', h, '~sum', ARGV[2])
  if redis.call('TTL', z) < ttl then
    redis.call('EXPIRE', z, ttl)
    redis.call('EXPIRE', h, ttl)
  end
end
return {0}
"""
)

# KEYS: spent, zset, hash, estimated per line, then the hold's settled mark.
# ARGV: id, cost (nanos), now, estimated (0 or 1), seconds to keep the settled mark, then one ttl
# for the spent key per line (0: keep forever).
# Settles once per hold id: a replayed settle (its first reply lost) finds the mark and adds nothing.
# Returns {spent, reserved, estimated} per line, after.
SETTLE: Final = (
    _PURGE
    + """
local id, now = ARGV[1], ARGV[3]
local n = (#KEYS - 1) / 4
local first = redis.call('SET', KEYS[#KEYS], '1', 'NX', 'EX', ARGV[5])
local out = {}
for i = 1, n do
  local s, z, h, e = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  purge(z, h, now)
  if first then
    drop(z, h, id)
    redis.call('INCRBY', s, ARGV[2])
    if ARGV[4] == '1' then redis.call('INCRBY', e, ARGV[2]) end
    local ttl = tonumber(ARGV[5 + i])
    if ttl > 0 then
      redis.call('EXPIRE', s, ttl)
      if ARGV[4] == '1' then redis.call('EXPIRE', e, ttl) end
    end
  end
  local spent, reserved = figures(s, h)
  out[#out + 1] = spent
  out[#out + 1] = reserved
  out[#out + 1] = tonumber(redis.call('GET', e) or '0')
end
return out
"""
)

# ARGV: id.
RELEASE: Final = (
    _PURGE
    + """
for i = 1, #KEYS / 3 do
  drop(KEYS[3 * i - 1], KEYS[3 * i], ARGV[1])
end
return 0
"""
)

# KEYS: spent, zset, hash, estimated per line. ARGV: now. Returns {spent, reserved, estimated} per line.
TOTALS: Final = (
    _PURGE
    + """
local out = {}
for i = 1, #KEYS / 4 do
  local s, z, h, e = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  purge(z, h, ARGV[1])
  local spent, reserved = figures(s, h)
  out[#out + 1] = spent
  out[#out + 1] = reserved
  out[#out + 1] = tonumber(redis.call('GET', e) or '0')
end
return out
"""
)
