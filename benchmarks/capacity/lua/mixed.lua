-- The fleet-capacity workload for wrk: a mix of reads and writes through the gateway, each request as a
-- random seeded user of the role the operation needs, at a constant rate (the gateway benchmark's
-- paced.lua, loaded below, schedules the sends and prints BENCH_RESULT).
--
--   wrk ... -s mixed.lua <gateway url> -- <req/s per thread> <users file> <mix> <threads> <slot base>
--
-- users file (tab-separated, one user a line; written by benchmarks/capacity/workload.py):
--   T <token> <tutor id>   <their student ids, comma-separated>
--   S <token> <student id> <their open homework ids, comma-separated>
--   P <token> <parent id>  <their children's ids, comma-separated>
-- mix: "operation=weight,operation=weight,..." (the operations are the keys of `operations` below)
-- slot base: epoch seconds; a scheduled lesson starts at base + (n * threads + thread index) hours, n
-- counting that tutor's lessons in this thread, so no two of a tutor's new lessons overlap.
-- done() also prints one "CAPACITY_RESULT {json}" line: requests sent per operation and answers per status.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "../../gateway/lua/paced.lua")  -- init(rate), delay(), done(): the pacing and BENCH_RESULT
local paced_init = init
local paced_done = done

local threads = {}
local thread_count = 1
local next_index = 0

function setup(thread)
  thread:set("thread_index", next_index)
  next_index = next_index + 1
  threads[#threads + 1] = thread
end

-- per thread -----------------------------------------------------------------------------------
local users = { T = {}, S = {}, P = {} }
local picks = {}  -- operation name, repeated by weight: one random index picks an operation
local slot_base = 0
local lessons_of = {}  -- tutor id -> lessons scheduled by this thread
sent = {}  -- operation -> requests (read by done() through thread:get)
statuses = {}  -- status code -> answers
samples = {}  -- status code -> the first answer's body (non-2xx only)

local function split(text, separator)
  local parts = {}
  for part in string.gmatch(text, "([^" .. separator .. "]+)") do
    parts[#parts + 1] = part
  end
  return parts
end

local function load_users(path)
  local file = assert(io.open(path, "r"), "cannot read the users file " .. tostring(path))
  for line in file:lines() do
    local fields = split(line, "\t")
    local list = users[fields[1]]
    if list ~= nil then
      list[#list + 1] = { token = fields[2], id = fields[3], others = split(fields[4] or "", ",") }
    end
  end
  file:close()
end

local function any(list)
  return list[math.random(#list)]
end

local function bearer(user)
  return { ["Authorization"] = "Bearer " .. user.token }
end

local function json_headers(user)
  return { ["Authorization"] = "Bearer " .. user.token, ["Content-Type"] = "application/json" }
end

local function get(user, path)
  return wrk.format("GET", path, bearer(user))
end

local function post(user, path, body)
  return wrk.format("POST", path, json_headers(user), body)
end

local function lesson_start(tutor)
  local n = lessons_of[tutor.id] or 0
  lessons_of[tutor.id] = n + 1
  return os.date("!%Y-%m-%dT%H:%M:%SZ", slot_base + (n * thread_count + thread_index) * 3600)
end

operations = {
  -- reads
  student_schedule = function() return get(any(users.S), "/api/v1/lessons/schedule") end,
  tutor_schedule = function() return get(any(users.T), "/api/v1/lessons/schedule") end,
  parent_schedule = function() return get(any(users.P), "/api/v1/lessons/schedule") end,
  student_balance = function()
    local student = any(users.S)
    return get(student, "/api/v1/payments/balances/" .. student.id)
  end,
  tutor_balance = function()
    local tutor = any(users.T)
    return get(tutor, "/api/v1/payments/balances/" .. any(tutor.others))
  end,
  parent_balance = function()
    local parent = any(users.P)
    return get(parent, "/api/v1/payments/balances/" .. any(parent.others))
  end,
  student_profile = function() return get(any(users.S), "/api/v1/students/me/profile") end,
  student_homework = function() return get(any(users.S), "/api/v1/homework") end,
  tutor_homework = function() return get(any(users.T), "/api/v1/homework") end,
  tutor_students = function() return get(any(users.T), "/api/v1/users/students") end,
  student_me = function() return get(any(users.S), "/api/v1/users/me") end,
  -- writes
  schedule_lesson = function()
    local tutor = any(users.T)
    local body = string.format(
      '{"student_id":"%s","starts_at":"%s","duration_minutes":60,"subject":"Mathematics","topic":"An extra lesson"}',
      any(tutor.others), lesson_start(tutor))
    return post(tutor, "/api/v1/lessons", body)
  end,
  top_up = function()
    local tutor = any(users.T)
    local body = string.format('{"student_id":"%s","amount":150000,"currency":"RUB","method":"cash"}', any(tutor.others))
    return post(tutor, "/api/v1/payments/top-ups", body)
  end,
  submit_homework = function()
    local student = any(users.S)
    return post(student, "/api/v1/homework/" .. any(student.others) .. "/submissions", '{"text":"My answers: 1a, 2c, 3b."}')
  end,
}

function init(args)
  paced_init({ args[1] })
  load_users(args[2])
  for _, entry in ipairs(split(args[3], ",")) do
    local name, weight = entry:match("^([%w_]+)=(%d+)$")
    assert(name and operations[name], "unknown operation in the mix: " .. entry)
    for _ = 1, tonumber(weight) do
      picks[#picks + 1] = name
    end
  end
  thread_count = tonumber(args[4])
  slot_base = tonumber(args[5])
  for role, list in pairs(users) do
    assert(#list > 0, "the users file has no " .. role .. " line")
  end
  math.randomseed(os.time() * 1000 + thread_index)
end

function request()
  local name = picks[math.random(#picks)]
  sent[name] = (sent[name] or 0) + 1
  return operations[name]()
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if (status < 200 or status > 299) and samples[status] == nil then
    samples[status] = string.sub(body or "", 1, 300)
  end
end

local function quoted(text)
  return '"' .. string.gsub(text, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  paced_done(summary, latency, requests)
  local total_sent, total_statuses, first_bodies = {}, {}, {}
  for _, thread in ipairs(threads) do
    for name, count in pairs(thread:get("sent") or {}) do
      total_sent[name] = (total_sent[name] or 0) + count
    end
    for status, count in pairs(thread:get("statuses") or {}) do
      total_statuses[status] = (total_statuses[status] or 0) + count
    end
    for status, body in pairs(thread:get("samples") or {}) do
      first_bodies[status] = first_bodies[status] or body
    end
  end
  local parts = {}
  for name, count in pairs(total_sent) do parts[#parts + 1] = string.format('"%s":%d', name, count) end
  local codes = {}
  for status, count in pairs(total_statuses) do codes[#codes + 1] = string.format('"%d":%d', status, count) end
  local bodies = {}
  for status, body in pairs(first_bodies) do bodies[#bodies + 1] = string.format('"%d":%s', status, quoted(body)) end
  io.write(string.format('CAPACITY_RESULT {"sent":{%s},"statuses":{%s},"samples":{%s}}\n',
    table.concat(parts, ","), table.concat(codes, ","), table.concat(bodies, ",")))
end
