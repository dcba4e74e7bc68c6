-- POST a raw binary body (an upload without multipart), default 100 KiB;
-- the size in bytes may be given as the first script argument.
--   wrk -s wrk-scripts/upload.lua http://127.0.0.1:8080/upload -- 102400
-- The body is the same on every run (a fixed byte pattern), so the server's
-- CRC-32 answer can be checked.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

function make_body(size)
   local block = {}
   for i = 0, 255 do
      block[#block + 1] = string.char((i * 97 + 13) % 256)
   end
   block = table.concat(block)
   return string.rep(block, math.ceil(size / #block)):sub(1, size)
end

function init(args)
   wrk.method = "POST"
   wrk.body = make_body(tonumber(args[1]) or 102400)
   wrk.headers["Content-Type"] = "application/octet-stream"
end
