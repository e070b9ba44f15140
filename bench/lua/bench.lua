-- One wrk script for every scenario of the suite; the first script argument picks the mode.
--
--   wrk ... -s bench.lua URL -- urls FILE [HEADER ...]
--       GET each path of FILE (one a line) in turn, every thread starting at its own offset;
--       HEADER arguments are sent as-is ("If-None-Match: \"abc\"").
--   wrk ... -s bench.lua URL -- cold TEMPLATE LOW SPAN THREADS
--       GET TEMPLATE with "{w}" replaced by a width never asked before in this run:
--       request i (counted across threads) asks LOW + (i * 397) % SPAN, distinct for SPAN requests.
--   wrk ... -s bench.lua URL -- post BODYFILE CONTENT_TYPE PREFIX
--       POST the prebuilt body of BODYFILE to PREFIX/t{thread}-{n}, a new path each time.
--
-- done() prints one line "WRKJSON {...}" with the counts and latency percentiles (microseconds)
-- that bench/suite.py reads; wrk's own report is printed above it as usual.

local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end

local mode
local requests = {}
local position = 1
local template, low, span, stride
local body, content_type, prefix
local sent = 0

local function read_file(path)
  local handle = assert(io.open(path, "rb"))
  local content = handle:read("*a")
  handle:close()
  return content
end

function init(args)
  mode = args[1]
  tid = tid or 0
  if mode == "urls" then
    local headers = {}
    for i = 3, #args do
      local name, value = args[i]:match("^([^:]+):%s*(.*)$")
      headers[name] = value
    end
    for line in io.lines(args[2]) do
      if line ~= "" then
        table.insert(requests, wrk.format("GET", line, headers))
      end
    end
    position = (tid % #requests) + 1
  elseif mode == "cold" then
    template = args[2]
    low = tonumber(args[3])
    span = tonumber(args[4])
    stride = tonumber(args[5])
  elseif mode == "post" then
    body = read_file(args[2])
    content_type = args[3]
    prefix = args[4]
  else
    error("unknown mode " .. tostring(mode))
  end
end

function request()
  if mode == "urls" then
    local r = requests[position]
    position = position % #requests + 1
    return r
  elseif mode == "cold" then
    local i = tid + stride * sent
    sent = sent + 1
    local width = low + (i * 397) % span
    return wrk.format("GET", (template:gsub("{w}", tostring(width))))
  else
    sent = sent + 1
    local path = prefix .. "/t" .. tid .. "-" .. sent
    return wrk.format("POST", path, { ["Content-Type"] = content_type }, body)
  end
end

function done(summary, latency, requests_stats)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
