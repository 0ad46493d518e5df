-- log-batch with 1000 metrics per request; every row distinct.
local run_id = os.getenv("RUN_ID")
-- COUNTER_BASE keeps a warm-up run and the measured run from writing the same rows.
local counter = tonumber(os.getenv("COUNTER_BASE") or "0")
local thread_offset = 0
local threads_seen = 0

setup = function(thread)
  threads_seen = threads_seen + 1
  thread:set("thread_offset", threads_seen * 100000000)
end

init = function()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

request = function()
  counter = counter + 1
  local base = thread_offset + counter * 1000
  local parts = {}
  for index = 0, 999 do
    local step = base + index
    parts[#parts + 1] = string.format('{"key":"m%d","value":%d.25,"timestamp":%d,"step":%d}',
      index % 10, step, 1700000000000 + step, step)
  end
  local body = '{"run_id":"' .. run_id .. '","metrics":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format(nil, nil, nil, body)
end
