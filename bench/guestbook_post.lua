-- wrk script for bench/guestbook.sh: POST /guestbook with a form body; each
-- request has its own message so every post is a distinct entry.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local n = 0
-- wharfd refuses a post without its form token (cross-site protection)
local token = os.getenv("WH_GB_TOKEN") or ""

function request()
   n = n + 1
   return wrk.format(nil, "/guestbook", nil, "name=bench&message=hello+from+wrk+" .. n .. "&token=" .. token)
end
