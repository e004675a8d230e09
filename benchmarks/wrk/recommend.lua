-- wrk script for lmrec serve: POST /v1/recommend for users drawn at random, with
-- per-status latency percentiles and, optionally, a constant request rate.
--
-- Arguments (after "--"): USERS_FILE API_KEY [RATE_PER_CONNECTION] [OUT_PREFIX]
--   USERS_FILE   one user id per line (drawn uniformly, seeded per thread)
--   API_KEY      sent as X-API-Key ("-" for none)
--   RATE         requests/s per connection: wrk2-style constant rate. Each connection
--                has a schedule; when a response arrives after the next request's
--                scheduled time, that request's latency is counted from its scheduled
--                time (no coordinated omission). 0 or absent: closed loop (plain wrk).
--   OUT_PREFIX   each thread writes "status<TAB>latency_us" per response to
--                OUT_PREFIX-<thread>.tsv (read by benchmarks/serve_wrk.py); the socket
--                error counts go to OUT_PREFIX-summary.json
--
-- Run with one connection per thread (-t N -c N): request/response pairs are then
-- matched per thread. Latencies come from clock_gettime(CLOCK_MONOTONIC) via LuaJIT FFI.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } lmrec_timespec;
  int clock_gettime(int clk, lmrec_timespec *ts);
]]
local ts = ffi.new("lmrec_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  users = {}
  for line in io.lines(args[1]) do users[#users + 1] = line end
  key = args[2]
  rate = tonumber(args[3] or "0") or 0
  interval = rate > 0 and 1e6 / rate or 0
  math.randomseed(1234 + id)
  headers = { ["Content-Type"] = "application/json" }
  if key ~= "-" then headers["X-API-Key"] = key end
  out = args[4] and io.open(args[4] .. "-" .. id .. ".tsv", "w") or nil
  next_at = nil   -- scheduled time of the next request (constant rate)
  origin = 0      -- latency origin of the request in flight
  last_done = 0   -- when the previous response arrived
end

function delay()
  if interval == 0 then return 0 end
  if next_at == nil then next_at = now_us() end  -- wrk asks before the first request too
  local wait = (next_at - now_us()) / 1000
  if wait <= 0 then return 0 end
  return math.ceil(wait)
end

function request()
  local t = now_us()
  if interval > 0 then
    if next_at == nil then next_at = t end
    -- late because the previous response came after this request's slot: count from
    -- the slot (what a client with a fixed schedule would see); else from the send
    if last_done > next_at then origin = next_at else origin = t end
    next_at = next_at + interval
  else
    origin = t
  end
  local body = '{"user": "' .. users[math.random(#users)] .. '", "k": 10}'
  return wrk.format("POST", "/v1/recommend", headers, body)
end

function response(status, hdrs, body)
  local t = now_us()
  last_done = t
  if out then out:write(status, "\t", math.floor(t - origin), "\n") end
end

-- (thread:get of large tables crashes wrk 4.1, so samples go through files)
function done(summary, latency, requests)
  local e = summary.errors
  local text = string.format(
    '{"duration_s": %.3f, "requests": %d, "socket_errors": {"connect": %d, "read": %d, '
      .. '"write": %d, "timeout": %d, "status": %d}}',
    summary.duration / 1e6, summary.requests, e.connect, e.read, e.write, e.timeout, e.status)
  io.write("LMREC_SUMMARY " .. text .. "\n")
end
