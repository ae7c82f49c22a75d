-- wrk script for the intake benchmark: POST a realistic form payload with a distinct email each time.
-- Usage: wrk -t2 -c16 -d30s -s bench/submit.lua URL -- <run-prefix>
-- Prints one line starting with WRK_JSON that bench/intake.py parses.

local threads = {}
local counter = 0
created = 0
others = 0
prefix = "bench"

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "bench"
end

function request()
  counter = counter + 1
  local domain = string.format("co%d.bench.example", counter % 997)
  local email = string.format("%s-t%d-%d@%s", prefix, tid, counter, domain)
  local body = string.format(
    '{"email":"%s","first_name":"Bench","last_name":"Lead %d","title":"Head of Marketing",' ..
    '"company":"Co %d","company_size":"51-200","country":"DE","consent":true,' ..
    '"utm_source":"bench","utm_medium":"cpc","utm_campaign":"load","page_url":"https://www.leadfunnel.example/pricing"}',
    email, counter, counter % 997)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    others = others + 1
  end
end

function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + (t:get("created") or 0)
    o = o + (t:get("others") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"created":%d,"other_status":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, c, o, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
