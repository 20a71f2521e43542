-- wrk script of bench/http_load.sh: POST /recommend for users spread over 1..MTREC_BENCH_USERS
-- (each wrk thread walks its own sequence), k = MTREC_BENCH_K (10), explain = MTREC_BENCH_EXPLAIN (3); the bearer token from
-- MTREC_TOKEN when set. Ends with one "JSON {...}" line of the run's numbers.
local users = tonumber(os.getenv("MTREC_BENCH_USERS") or "943")
local k = tonumber(os.getenv("MTREC_BENCH_K") or "10")
local explain = tonumber(os.getenv("MTREC_BENCH_EXPLAIN") or "3")
local token = os.getenv("MTREC_TOKEN")
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  counter = id * 100003
  headers = { ["Content-Type"] = "application/json" }
  if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
end

function request()
  counter = counter + 1
  local u = (counter * 7919) % users + 1  -- 7919 is prime: every user in turn, in a scattered order
  return wrk.format("POST", "/recommend", headers, string.format('{"user": "%d", "k": %d, "explain": %d}', u, k, explain))
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'JSON {"requests": %d, "duration_s": %.2f, "rps": %.1f, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f, "non_2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, secs, summary.requests / secs, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, e.status, e.connect, e.read, e.write, e.timeout))
end
