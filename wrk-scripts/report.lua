-- Shared by the other scripts (loaded with dofile): prints one line
--   WRK_JSON {...}
-- after wrk's own report, with the summary, errors and latency percentiles
-- (microseconds), so the harness does not have to scrape wrk's text output.

local percentiles = { 50, 75, 90, 99, 99.9 }

local function json_number(x)
   if x ~= x or x == math.huge or x == -math.huge then
      return "null"
   end
   return string.format("%.17g", x)
end

function done(summary, latency, requests)
   local e = summary.errors
   local parts = {
      '"requests":' .. json_number(summary.requests),
      '"duration_us":' .. json_number(summary.duration),
      '"bytes":' .. json_number(summary.bytes),
      string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
                    e.connect, e.read, e.write, e.status, e.timeout),
      '"latency_us":{"min":' .. json_number(latency.min)
         .. ',"max":' .. json_number(latency.max)
         .. ',"mean":' .. json_number(latency.mean)
         .. ',"stdev":' .. json_number(latency.stdev) .. '}',
   }
   local ps = {}
   for _, p in ipairs(percentiles) do
      ps[#ps + 1] = string.format('"%g":%s', p, json_number(latency:percentile(p)))
   end
   parts[#parts + 1] = '"percentiles_us":{' .. table.concat(ps, ",") .. '}'
   io.write("WRK_JSON {" .. table.concat(parts, ",") .. "}\n")
end
