local experiment_id = os.getenv("EXPERIMENT_ID")
init = function()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = string.format('{"experiment_id":"%s","start_time":1700000000000,"tags":[{"key":"mlflow.user","value":"bench"}]}', experiment_id)
end
