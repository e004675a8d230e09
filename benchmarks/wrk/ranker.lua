-- wrk script for benchmarks/serve_ranker.py: POST /v1/recommend for a random known user.
-- Arguments after "--": a file of user ids (one per line) and k.
local users = {}
local k = 10

function init(args)
  for line in io.lines(args[1]) do
    users[#users + 1] = line
  end
  k = tonumber(args[2] or "10")
  math.randomseed(2026)
end

function request()
  local user = users[math.random(#users)]
  local body = string.format('{"user": "%s", "k": %d}', user, k)
  return wrk.format("POST", "/v1/recommend", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f rps=%.1f\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests / (summary.duration / 1e6)))
end
