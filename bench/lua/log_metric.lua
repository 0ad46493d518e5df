-- One metric per request on one run; values and steps differ per request so every row is new.
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
  local step = thread_offset + counter
  local body = string.format(
    '{"run_id":"%s","key":"loss","value":%d.5,"timestamp":%d,"step":%d}',
    run_id, step, 1700000000000 + step, step)
  return wrk.format(nil, nil, nil, body)
end
