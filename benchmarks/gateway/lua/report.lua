-- wrk's done() hook: one line "BENCH_RESULT {json}" with the counts and latency percentiles
-- (microseconds). The harness reads that line instead of wrk's rounded human-readable summary.

local percentiles = { 50, 75, 90, 99, 99.9 }

function done(summary, latency, requests)
  local parts = {}
  for _, p in ipairs(percentiles) do
    parts[#parts + 1] = string.format('"p%s":%d', tostring(p), latency:percentile(p))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.min, latency.mean, latency.stdev, latency.max, table.concat(parts, ",")
  ))
end
