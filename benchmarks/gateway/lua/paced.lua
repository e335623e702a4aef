-- A constant request rate for wrk (wrk2 is not in Debian): each wrk thread sends on a fixed
-- schedule of `wrk ... -- <requests per second for this thread>`. delay() runs before every
-- request of every connection and reserves the thread's next slot, so the rate holds however
-- long responses take, as long as some connection is free when a slot comes (use enough
-- connections). Latency is measured from the actual send, as plain wrk does; see
-- docs/performance.md for what that leaves out. Needs wrk built with LuaJIT (Debian's is).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local now_buffer = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now_buffer)
  return tonumber(now_buffer.tv_sec) * 1000 + tonumber(now_buffer.tv_nsec) / 1e6
end

local interval_ms = nil
local next_slot_ms = nil

function init(args)
  local rate = tonumber(args[1])
  if rate == nil or rate <= 0 then
    error("paced.lua needs this thread's rate: wrk ... <url> -- <requests per second>")
  end
  interval_ms = 1000 / rate
end

function delay()
  local now = now_ms()
  if next_slot_ms == nil then
    next_slot_ms = now
  end
  local slot = next_slot_ms
  next_slot_ms = next_slot_ms + interval_ms
  if slot <= now then
    return 0
  end
  return slot - now
end

-- the same done() as the throughput runs
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")
