-- One rate-limit decision, atomically: a sliding-window log of one caller's requests.
--
-- KEYS[1]  the caller's log: a sorted set, member = a request's unique id, score = its time in ms
-- ARGV[1]  now, in milliseconds (an argument, so every gateway instance and every test agrees on time)
-- ARGV[2]  the window, in milliseconds
-- ARGV[3]  the limit: requests allowed in any window
-- ARGV[4]  this request's unique id
--
-- Returns {allowed (1 or 0), remaining, milliseconds until the oldest counted request leaves the window}.
-- A refused request is not logged, so a client that keeps knocking is let in as soon as its window allows.

local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])

redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
    redis.call('ZADD', key, now, ARGV[4])
    count = count + 1
    allowed = 1
end
-- the expiry in the same step as the write: no key is ever left without one
redis.call('PEXPIRE', key, window)

local reset = window
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if oldest[2] then
    reset = tonumber(oldest[2]) + window - now
end
return {allowed, limit - count, reset}
