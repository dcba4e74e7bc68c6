-- GET the URL given on the command line; JSON report via report.lua.
--   wrk -s wrk-scripts/hello.lua http://127.0.0.1:8080/hello

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

wrk.method = "GET"
