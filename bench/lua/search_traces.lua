-- search-traces with a tag filter, 100 per page, newest first.
local experiment_id = os.getenv("EXPERIMENT_ID")
init = function()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = string.format('{"locations":[{"type":"MLFLOW_EXPERIMENT","mlflow_experiment":{"experiment_id":"%s"}}],' ..
    '"filter":"tag.group = \'g3\'","max_results":100,"order_by":["timestamp_ms DESC"]}', experiment_id)
end
