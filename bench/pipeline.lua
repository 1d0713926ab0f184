-- wrk script: send N requests back to back on each connection (HTTP/1.1
-- pipelining). Usage: wrk -s bench/pipeline.lua URL -- N   (default 16)
local depth = 16
local req

function init(args)
   depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

function request()
   return req
end
