package cluster

import "github.com/redis/go-redis/v9"

// The Lua scripts that change the shared table. Each runs atomically in Redis.
//
// Keys: KEYS[1] the announcements hash (name → "EXPIRES_MS OPERATOR", EXPIRES_MS 0 for none),
// KEYS[2] the expiry sorted set (names with an expiry, by expiry), KEYS[3] the per-operator
// counts, KEYS[4] the revision counter. ARGV[1] is the channel changes are published on, ARGV[2]
// now in Unix milliseconds. A script that changed anything increments the revision and publishes
// "REV\n" followed by one line per change: "+ NAME EXPIRES_MS OPERATOR" or "- NAME". Every script
// returns the revision after it ran first.

// common holds the helpers every script shares.
const common = `
local ann, exp, ops, rev = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local channel, now = ARGV[1], tonumber(ARGV[2])
local changes = {}

local function holder(name)
  local v = redis.call('HGET', ann, name)
  if not v then return nil, nil end
  local sp = string.find(v, ' ', 1, true)
  return tonumber(string.sub(v, 1, sp - 1)), string.sub(v, sp + 1)
end

local function live(e) return e == 0 or e > now end

local function drop(name, o)
  redis.call('HDEL', ann, name)
  redis.call('ZREM', exp, name)
  if redis.call('HINCRBY', ops, o, -1) <= 0 then redis.call('HDEL', ops, o) end
  changes[#changes + 1] = '- ' .. name
end

local function store(name, e, o)
  redis.call('HSET', ann, name, e .. ' ' .. o)
  if e == 0 then redis.call('ZREM', exp, name) else redis.call('ZADD', exp, e, name) end
  changes[#changes + 1] = '+ ' .. name .. ' ' .. e .. ' ' .. o
end

-- purge drops up to 1000 expired announcements and returns how many it looked at.
local function purge()
  local dead = redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, 1000)
  for _, name in ipairs(dead) do
    local _, o = holder(name)
    if o then drop(name, o) else redis.call('ZREM', exp, name) end
  end
  return #dead
end

local function finish()
  local r = tonumber(redis.call('GET', rev) or '0')
  if #changes > 0 then
    r = redis.call('INCR', rev)
    redis.call('PUBLISH', channel, r .. '\n' .. table.concat(changes, '\n'))
  end
  return r
end
`

// announceScript applies one operator's batch. ARGV[3] operator, ARGV[4] the cap on all
// announcements, ARGV[5] the cap per operator, then pairs NAME EXPIRES_MS (0: none; -1: withdraw).
// It returns {REV, {result per pair}}: "ok", "taken" or "full REASON". The rules and their order
// are matcher.Table.Announce's.
var announceScript = redis.NewScript(common + `
local op, maxAll, maxOp = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local out, purged = {}, false

local function full(replacing)
  if not replacing and redis.call('HLEN', ann) >= maxAll then
    return 'the shared table holds ' .. maxAll .. ' announcements, its limit'
  end
  local n = tonumber(redis.call('HGET', ops, op) or '0')
  if n >= maxOp then return 'operator "' .. op .. '" holds ' .. n .. ' announcements, its limit' end
  return nil
end

for i = 6, #ARGV, 2 do
  local name, e = ARGV[i], tonumber(ARGV[i + 1])
  local ce, co = holder(name)
  if co and co ~= op and live(ce) then
    out[#out + 1] = 'taken'
  elseif e < 0 then
    if co then drop(name, co) end
    out[#out + 1] = 'ok'
  elseif co == op then
    store(name, e, op)
    out[#out + 1] = 'ok'
  else
    local why = full(co ~= nil)
    if why and not purged then
      purged = true
      purge()
      ce, co = holder(name)
      why = full(co ~= nil)
    end
    if why then
      out[#out + 1] = 'full ' .. why
    else
      if co then drop(name, co) end
      store(name, e, op)
      redis.call('HINCRBY', ops, op, 1)
      out[#out + 1] = 'ok'
    end
  end
end
return {finish(), out}
`)

// withdrawScript removes ARGV[4] if operator ARGV[3] holds it. It returns {REV, 1} when it did,
// {REV, 0} when the operator holds no such name.
var withdrawScript = redis.NewScript(common + `
local _, o = holder(ARGV[4])
if o ~= ARGV[3] then return {finish(), 0} end
drop(ARGV[4], o)
return {finish(), 1}
`)

// purgeScript drops up to 1000 expired announcements. It returns {REV, how many it looked at}.
var purgeScript = redis.NewScript(common + `
local n = purge()
return {finish(), n}
`)
