-- wrk script: submit the public support form as JSON on every request (no credentials;
-- run with rate limiting disabled). 1,000 distinct customers, each request a new case.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"name":"Load %d","email":"load%d@example.org","subject":"Bench","message":"Created by bench/support_form.lua","topic":"general"}',
    n, n % 1000)
  return wrk.format(nil, nil, nil, body)
end
