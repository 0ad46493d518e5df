-- OTLP/HTTP JSON export: 10 traces of 10 spans (a root and 9 children) per request, every id unique.
local experiment_id = os.getenv("EXPERIMENT_ID")
local counter = 0
local thread_offset = 0
local threads_seen = 0

setup = function(thread)
  threads_seen = threads_seen + 1
  thread:set("thread_offset", threads_seen * 100000000)
end

init = function()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["x-mlflow-experiment-id"] = experiment_id
end

local function span(trace_id, span_id, parent, name, start_ns, end_ns, span_type)
  local parent_part = ""
  if parent then
    parent_part = string.format('"parentSpanId":"%s",', parent)
  end
  return string.format(
    '{"traceId":"%s","spanId":"%s",%s"name":"%s","kind":1,"startTimeUnixNano":"%d000","endTimeUnixNano":"%d000",' ..
    '"attributes":[{"key":"mlflow.spanType","value":{"stringValue":"\\"%s\\""}},' ..
    '{"key":"mlflow.spanInputs","value":{"stringValue":"{\\"question\\": \\"what is %s?\\"}"}},' ..
    '{"key":"mlflow.spanOutputs","value":{"stringValue":"\\"an answer\\""}}],"status":{"code":1}}',
    trace_id, span_id, parent_part, name, start_ns, end_ns, span_type, name)
end

request = function()
  counter = counter + 1
  local resources = {}
  for t = 0, 9 do
    local id = thread_offset + counter * 10 + t
    local trace_id = string.format("%032x", id)
    local root = string.format("%016x", id * 16)
    -- Microseconds (doubles hold them exactly); the format appends "000" to make nanoseconds.
    local start_us = 1700000000000000 + id * 1000
    local spans = { span(trace_id, root, nil, "agent", start_us, start_us + 900, "AGENT") }
    for s = 1, 9 do
      spans[#spans + 1] = span(trace_id, string.format("%016x", id * 16 + s), root, "step" .. s,
        start_us + s * 10, start_us + s * 10 + 5, "LLM")
    end
    resources[#resources + 1] = '{"resource":{"attributes":[{"key":"group","value":{"stringValue":"g' ..
      (id % 10) .. '"}}]},"scopeSpans":[{"scope":{"name":"bench"},"spans":[' .. table.concat(spans, ",") .. ']}]}'
  end
  local body = '{"resourceSpans":[' .. table.concat(resources, ",") .. ']}'
  return wrk.format(nil, nil, nil, body)
end
