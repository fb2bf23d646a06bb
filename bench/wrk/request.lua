-- The one wrk script of the benchmark suite (bench/suite.py), configured by environment:
--   BENCH_METHOD   GET, PUT, POST ...                     (default GET)
--   BENCH_PATH     request path; "{n}" becomes a random number in [0, BENCH_N)
--   BENCH_BODY     request body, same substitution       (default none)
--   BENCH_N        range of {n}                          (default 1)
--   BENCH_HOST     Host header (the vault's name for Coffer)
--   BENCH_AUTH     "Header-Name: value" (bearer token or X-Vault-Token)
--   BENCH_FOLLOW   "1": follow "nextLink" pages; one listing = all its pages
-- done() prints one line "BENCH_RESULT {json}" with counts and latency percentiles (us).
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  method = os.getenv("BENCH_METHOD") or "GET"
  path = os.getenv("BENCH_PATH") or "/"
  body = os.getenv("BENCH_BODY")
  count = tonumber(os.getenv("BENCH_N") or "1")
  follow = os.getenv("BENCH_FOLLOW") == "1"
  headers = { ["Content-Type"] = "application/json" }
  local host = os.getenv("BENCH_HOST")
  if host then headers["Host"] = host end
  local auth = os.getenv("BENCH_AUTH")
  if auth then
    local name, value = auth:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  math.randomseed(os.time() * 1000 + (id or 0) * 7919)
  pages = {}      -- next pages still to fetch (BENCH_FOLLOW)
  listings = 0    -- listings read to their last page
  failed = 0      -- responses with status >= 400
end

function request()
  local page = table.remove(pages)
  if page then
    return wrk.format("GET", page, headers)
  end
  local n = tostring(math.random(0, count - 1))
  local p = path:gsub("{n}", n)
  local b = nil
  if body then b = body:gsub("{n}", n) end
  return wrk.format(method, p, headers, b)
end

function response(status, hdrs, resp)
  if status >= 400 then
    failed = failed + 1
    return
  end
  if follow then
    local next = resp:match('"nextLink"%s*:%s*"([^"]+)"')
    if next then
      table.insert(pages, (next:gsub("^https?://[^/]+", "")))
    else
      listings = listings + 1
    end
  end
end

function done(summary, latency, requests)
  local l, f = 0, 0
  for _, t in ipairs(threads) do
    l = l + (t:get("listings") or 0)
    f = f + (t:get("failed") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"failed":%d,"listings":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, f, l,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
