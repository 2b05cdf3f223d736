-- Paced values requests for bench/emulator_capacity.py (Debian's wrk 4.x, built with LuaJIT).
--
--   wrk -t1 -c64 -d23s --timeout 10s -s bench/values_load.lua URL -- KEY RATE TOTAL
--
-- wrk itself is closed-loop (every connection sends again as soon as its answer arrives);
-- delay() turns it into a fixed schedule: request k of a thread is due at start + k / RATE,
-- a connection that frees up early waits for its slot, and after TOTAL requests every
-- connection idles until -d ends. With enough connections this is an open loop at RATE;
-- when the emulator falls behind, slots start late (counted in "late") and the achieved rate
-- drops below RATE. RATE and TOTAL are per thread. done() prints one JSON line.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local LATE_MS = 10 -- a request sent more than this after its slot counts as late
local IDLE_MS = 3600 * 1000

local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

-- Per-thread state (globals, so that done() can read them with thread:get).
interval_ms = 0
total = 0
issued = 0
late = 0
max_lag_ms = 0
ok = 0
not_ok = 0
statuses = ""
first_ms = -1
last_ms = -1

local status_counts = {}

function init(args)
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  interval_ms = 1000 / tonumber(args[2])
  total = tonumber(args[3])
end

function delay()
  local now = now_ms()
  if issued >= total then
    return IDLE_MS -- the schedule is done; wait for -d to end
  end
  if first_ms < 0 then
    first_ms = now
  end
  local due = first_ms + issued * interval_ms
  issued = issued + 1
  local wait = due - now
  if -wait > max_lag_ms then
    max_lag_ms = -wait
  end
  if wait < -LATE_MS then
    late = late + 1
  end
  if wait <= 0 then
    return 0
  end
  return math.floor(wait + 0.5)
end

function response(status, headers, body)
  last_ms = now_ms()
  if status == 200 then
    ok = ok + 1
  else
    not_ok = not_ok + 1
    local key = tostring(status)
    status_counts[key] = (status_counts[key] or 0) + 1
    local parts = {}
    for code, n in pairs(status_counts) do
      table.insert(parts, string.format('"%s": %d', code, n))
    end
    statuses = table.concat(parts, ", ")
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local sums = { issued = 0, late = 0, ok = 0, not_ok = 0 }
  local first, last, lag = nil, nil, 0
  local status_parts = {}
  for _, thread in ipairs(threads) do
    for name in pairs(sums) do
      sums[name] = sums[name] + thread:get(name)
    end
    local f, l = thread:get("first_ms"), thread:get("last_ms")
    if f >= 0 and (first == nil or f < first) then
      first = f
    end
    if l >= 0 and (last == nil or l > last) then
      last = l
    end
    lag = math.max(lag, thread:get("max_lag_ms"))
    local s = thread:get("statuses")
    if s ~= "" then
      table.insert(status_parts, s)
    end
  end
  local e = summary.errors
  io.write(
    string.format(
      '{"issued": %d, "completed": %d, "ok": %d, "not_ok": %d, "statuses": [%s], '
        .. '"span_s": %.3f, "late": %d, "max_lag_ms": %.1f, '
        .. '"p50_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, '
        .. '"connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
      sums.issued,
      summary.requests,
      sums.ok,
      sums.not_ok,
      #status_parts > 0 and ("{" .. table.concat(status_parts, "}, {") .. "}") or "",
      (first and last) and (last - first) / 1000 or 0,
      sums.late,
      lag,
      latency:percentile(50) / 1000,
      latency:percentile(99) / 1000,
      latency.max / 1000,
      e.connect,
      e.read,
      e.write,
      e.timeout
    )
  )
end
