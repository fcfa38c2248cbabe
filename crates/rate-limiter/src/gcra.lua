-- brisk-rate-limiter: GCRA over several windows, all or nothing, in one call.
--
-- KEYS[1]  the key's state: "<s>,<us>,<debt_1>,...,<debt_n>" where s/us is
--          the Redis TIME of the last write and debt_i is window i's TAT
--          minus that time, in nanoseconds (0 = a full window).
-- ARGV     cost, n, mode ("check" or "peek"), then per window: interval
--          (ns per unit) and capacity (burst x interval, ns). The caller
--          derives both from the window's shape exactly as the in-process
--          engine does: a token bucket has interval = period / limit; a
--          strict window interval = period / (limit + 1 - burst), so that
--          no interval of length period admits more than limit.
-- Returns  {1, 0, 0} when admitted (check spends it), or
--          {0, window (0-based), retry_after_ns} when not.
--
-- Time comes from Redis (TIME), so every process agrees on it. Debts, not
-- absolute times, are stored: they stay below 2^53 ns (104 days), so Lua's
-- doubles hold them exactly.
local t = redis.call('TIME')
local s, us = tonumber(t[1]), tonumber(t[2])
local cost = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local mode = ARGV[3]

local debts = {}
local state = redis.call('GET', KEYS[1])
local elapsed = 0
local fields = {}
if state then
  for v in string.gmatch(state, '[^,]+') do fields[#fields + 1] = tonumber(v) end
  local ds = s - (fields[1] or s)
  if ds > 1000000 then
    elapsed = 1e18
  else
    elapsed = ds * 1000000000 + (us - (fields[2] or us)) * 1000
  end
  if elapsed < 0 then elapsed = 0 end -- TIME went back (a failover): no refill
end
for i = 1, n do
  local d = (fields[2 + i] or 0) - elapsed
  if d < 0 then d = 0 end
  debts[i] = d
end

local worst, wait = 0, 0
for i = 1, n do
  local interval = tonumber(ARGV[2 + 2 * i])
  local capacity = tonumber(ARGV[3 + 2 * i])
  local d = debts[i] + cost * interval
  if d > capacity and d - capacity > wait then
    worst, wait = i, d - capacity
  end
  debts[i] = d
end
if worst > 0 then
  return {0, worst - 1, wait}
end
if mode == 'check' and cost > 0 then
  local parts, longest = {tostring(s), tostring(us)}, 0
  for i = 1, n do
    parts[2 + i] = string.format('%.0f', debts[i])
    if debts[i] > longest then longest = debts[i] end
  end
  redis.call('SET', KEYS[1], table.concat(parts, ','), 'PX', math.floor(longest / 1000000) + 1)
end
return {1, 0, 0}
