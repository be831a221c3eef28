-- wrk: GET /api/v1/beads/{id} over random beads of the seeded project
local prefix = os.getenv("BENCH_PREFIX")
local n = tonumber(os.getenv("BENCH_BEADS"))
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/v1/beads/" .. prefix .. "-" .. math.random(1, n))
end
