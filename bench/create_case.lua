-- wrk script: POST a new case on every request (one customer, many cases).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CASEFLOW_BENCH_TOKEN")
wrk.body = '{"subject":"Load test","body":"Created by bench/create_case.lua","customer":{"email":"load@example.org"},"channel":"api"}'

-- Print what any non-2xx answer was, so a failure under load says what it was.
response = function(status, headers, body)
  if status >= 300 then io.stderr:write(string.format("non-2xx %d: %s\n", status, body)) end
end
