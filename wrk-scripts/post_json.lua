-- POST a JSON document read from a file (first script argument).
--   wrk -s wrk-scripts/post_json.lua http://127.0.0.1:8080/api/v1/orders -- bench/apps/api/payload.json

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

function init(args)
   local path = args[1] or error("post_json.lua: give the JSON file after --")
   local fh = assert(io.open(path, "rb"))
   local body = fh:read("*a")
   fh:close()
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = "application/json"
end
