-- wrk: POST /api/v1/beads into the bench project
local project = os.getenv("BENCH_PROJECT")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"project_id":"' .. project .. '","title":"bench bead","priority":2,"tags":["bench"],"context":{"k":"v"}}'
