-- search-runs over the seeded experiment: a metric and a param filter, ordered by a metric, 100 a page.
local experiment_id = os.getenv("EXPERIMENT_ID")
init = function()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = string.format(
    '{"experiment_ids":["%s"],"filter":"metrics.m1 > 0.5 and params.p1 = \'a\'","order_by":["metrics.m2 DESC"],"max_results":100}',
    experiment_id)
end
