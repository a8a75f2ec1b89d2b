-- The bridge between a node and the scripts it runs (Lua 5.1, as Redis).
--
-- Loaded once into a fresh Lua state, before the sandbox exists: it keeps what it
-- needs as locals (debug.sethook, setfenv, the raw coroutine functions), then strips
-- the global table down to what Redis 7.0 scripts see and protects it. Everything a
-- script touches is Lua; the Python callables it is given (`py`) are reached only as
-- upvalues of Lua closures, never as values a script could hold.
--
-- A script runs as a coroutine. `redis.call` yields (CALL, kind, resp, args...) to
-- the driver (Python), which runs the command on the node and resumes the coroutine
-- with the reply as RESP bytes; the reply is turned into Lua values here, and the
-- script's result into the caller's RESP here too. `pcall`, `xpcall` and the
-- coroutine library are rebuilt on coroutines so that a redis.call inside them still
-- reaches the driver (Lua 5.1 cannot yield across a C pcall).

local py = ...

local type, tostring, tonumber, error, select, unpack = type, tostring, tonumber, error, select, unpack
local pairs, next, ipairs, pcall, xpcall = pairs, next, ipairs, pcall, xpcall
local rawget, rawset, rawequal = rawget, rawset, rawequal
local setmetatable, getmetatable = setmetatable, getmetatable
local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_status, co_running = coroutine.status, coroutine.running
local sethook, getinfo = debug.sethook, debug.getinfo
local loadstring, setfenv, newproxy = loadstring, setfenv, newproxy
local sfmt, ssub, sfind, sbyte, sgsub = string.format, string.sub, string.find, string.byte, string.gsub
local smatch = string.match
local tconcat, tsort = table.concat, table.sort
local G = _G

local BRIDGE = '=dynredis'   -- this chunk's source name: its frames are never blamed
local CALL = {}              -- first value of every yield that asks the driver for something
local BAD_YIELD = {}         -- resumes a script that yielded outside any coroutine of its own
local HOOK_COUNT = 100000    -- instructions between two looks at the clock / kill flag

local M = {}                 -- what Python gets back
local current                -- the run being resumed (see M.start)

-- --- readonly tables -------------------------------------------------------------------

local real_of = setmetatable({}, {__mode = 'k'})   -- proxy -> the table it protects

local function readonly_error()
  error('Attempt to modify a readonly table', 2)
end

local function readonly(t)
  local p = {}
  real_of[p] = t
  return setmetatable(p, {__index = t, __newindex = readonly_error, __metatable = false})
end

local function s_next(t, k)
  return next(real_of[t] or t, k)
end

local function s_pairs(t)
  local r = real_of[t]
  if r then return next, r, nil end
  return pairs(t)
end

local function s_ipairs(t)
  return ipairs(real_of[t] or t)
end

local function s_rawget(t, k)
  return rawget(real_of[t] or t, k)
end

local function s_rawset(t, k, v)
  if real_of[t] then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end

local function s_setmetatable(t, mt)
  if real_of[t] then error('Attempt to modify a readonly table', 0) end
  return setmetatable(t, mt)
end

-- --- the hook: time and SCRIPT KILL ----------------------------------------------------

local KILLED = 'ERR Script killed by user with SCRIPT KILL...'
local py_check = py.check

local function hook()
  local what = py_check()
  if what == 1 then error({err = KILLED}, 0) end
  if what == 2 then error({err = 'ERR FUNCTION LOAD timeout'}, 0) end
end

local function new_co(f)
  local co = co_create(f)
  sethook(co, hook, '', HOOK_COUNT)
  return co
end

-- --- pcall, xpcall and coroutines that let redis.call through --------------------------

local function err_string(e)
  -- Redis' pcall hands back an error table's message, not the table
  if type(e) == 'table' then
    local s = rawget(e, 'err')
    if type(s) == 'string' then return s end
  end
  return e
end

local function pcall_step(co, ok, ...)
  if not ok then return false, err_string((...)) end
  if co_status(co) == 'dead' then return true, ... end
  return pcall_step(co, co_resume(co, co_yield(...)))
end

local function pcall_c(ok, ...)
  if ok then return true, ... end
  return false, err_string((...))
end

local function is_lua(f)
  return type(f) == 'function' and getinfo(f, 'S').what ~= 'C'
end

local s_pcall = function(f, ...)
  if not is_lua(f) then return pcall_c(pcall(f, ...)) end
  local co = new_co(f)
  return pcall_step(co, co_resume(co, ...))
end

local function xpcall_step(co, h, ok, ...)
  if not ok then return false, h((...)) end
  if co_status(co) == 'dead' then return true, ... end
  return xpcall_step(co, h, co_resume(co, co_yield(...)))
end

local function s_xpcall(f, h)
  if not is_lua(f) then return xpcall(f, h) end
  local co = new_co(f)
  return xpcall_step(co, h, co_resume(co))
end

-- A script's own coroutines: requests for the driver pass through them.
local function resume_step(co, ok, first, ...)
  if ok and first == CALL and co_status(co) == 'suspended' then
    return resume_step(co, co_resume(co, co_yield(CALL, ...)))
  end
  return ok, first, ...
end

local function s_resume(co, ...)
  return resume_step(co, co_resume(co, ...))
end

local function s_create(f)
  if not is_lua(f) then
    error(sfmt("bad argument #1 to 'create' (Lua function expected)"), 2)
  end
  return new_co(f)
end

local function wrap_result(ok, ...)
  if not ok then error((...), 0) end
  return ...
end

local function s_wrap(f)
  local co = s_create(f)
  return function(...) return wrap_result(s_resume(co, ...)) end
end

local function yield_result(first, ...)
  if first == BAD_YIELD then
    error('attempt to yield across metamethod/C-call boundary', 0)
  end
  return first, ...
end

local function s_yield(...)
  return yield_result(co_yield(...))
end

-- --- loading code: never bytecode, always in the sandbox -------------------------------

local ENV  -- the scripts' global environment (below)

local function s_loadstring(s, name)
  if type(s) == 'string' and sbyte(s, 1) == 27 then
    return nil, 'attempt to load a binary chunk'
  end
  local f, e = loadstring(s, name)
  if f then setfenv(f, ENV) end
  return f, e
end

local function s_load(fn, name)
  if type(fn) == 'string' then return s_loadstring(fn, name) end
  local parts = {}
  while true do
    local piece = fn()
    if piece == nil or piece == '' then break end
    parts[#parts + 1] = piece
  end
  return s_loadstring(tconcat(parts), name or '=(load)')
end

-- --- RESP replies -> Lua values ---------------------------------------------------------

local function err_table(line)
  -- "-CODE message": Redis keeps it as is; a message without a code gets ERR
  local text = sgsub(line, '[\r\n]+$', '')
  if not sfind(text, ' ', 1, true) then text = 'ERR ' .. text end
  return {err = text}
end

local parse
parse = function(s, pos)
  local c = sbyte(s, pos)
  local e = sfind(s, '\r\n', pos, true)
  local line = ssub(s, pos + 1, e - 1)
  local nxt = e + 2
  if c == 36 then                                    -- $ bulk
    local n = tonumber(line)
    if n < 0 then return false, nxt end
    return ssub(s, nxt, nxt + n - 1), nxt + n + 2
  elseif c == 58 then return tonumber(line), nxt     -- : integer
  elseif c == 43 then return {ok = line}, nxt        -- + status
  elseif c == 45 then return err_table(line), nxt, true   -- - error
  elseif c == 42 or c == 62 then                     -- * array, > push
    local n = tonumber(line)
    if n < 0 then return false, nxt end
    local t = {}
    for i = 1, n do t[i], nxt = parse(s, nxt) end
    return t, nxt
  elseif c == 95 then return nil, nxt                -- _ null (RESP3)
  elseif c == 35 then return line == 't', nxt        -- # boolean
  elseif c == 44 then return {double = tonumber(line)}, nxt   -- , double
  elseif c == 40 then return {big_number = line}, nxt         -- ( big number
  elseif c == 61 then                                -- = verbatim
    local n = tonumber(line)
    local body = ssub(s, nxt, nxt + n - 1)
    return {verbatim_string = {format = ssub(body, 1, 3), string = ssub(body, 5)}}, nxt + n + 2
  elseif c == 37 or c == 126 or c == 124 then        -- % map, ~ set, | attribute
    local n = tonumber(line)
    local t = {}
    for _ = 1, n do
      local k, v
      k, nxt = parse(s, nxt)
      if c == 126 then v = true else v, nxt = parse(s, nxt) end
      if k ~= nil then t[k] = v end
    end
    if c == 124 then return parse(s, nxt) end        -- attributes are not shown to scripts
    if c == 37 then return {map = t}, nxt end
    return {set = t}, nxt
  end
  return false, nxt
end
M.parse = function(s) return (parse(s, 1)) end

-- A reply that came in parts (M.part): a bulk string's value is its middle parts joined
-- (a copy of a large value less than joining it framed and cutting it out); anything
-- else is joined whole and parsed.
local function parse_parts(parts)
  local n = parts.n
  local size = n > 2 and parts[n] == '\r\n' and tonumber(smatch(parts[1], '^%$(%d+)\r\n$'))
  if size then
    local value = tconcat(parts, '', 2, n - 1)
    if #value == size then return value, nil, false end
  end
  return parse(tconcat(parts, '', 1, n), 1)
end

-- --- Lua values -> RESP (luaReplyToRedisReply) ------------------------------------------

local function crlf_to_spaces(s) return (sgsub(s, '[\r\n]', ' ')) end

-- `emit` appends v's encoding to `out` after its n-th piece and returns the new count (a
-- count kept by hand: `#out` is a search each time, and a bulk's value is its own piece,
-- not concatenated with its framing: a 3,000,000-element reply took 12 s, now about 4).
local emit
emit = function(v, out, n, resp, caller)
  local t = type(v)
  if t == 'string' then
    out[n + 1] = '$' .. #v .. '\r\n'
    out[n + 2] = v
    out[n + 3] = '\r\n'
    return n + 3
  elseif t == 'number' then
    out[n + 1] = sfmt(':%d\r\n', v)
    return n + 1
  elseif t == 'boolean' then
    local r
    if resp == 2 then
      if v then r = ':1\r\n'
      elseif caller == 3 then r = '_\r\n'
      else r = '$-1\r\n' end
    elseif caller == 3 then r = v and '#t\r\n' or '#f\r\n'
    else r = v and ':1\r\n' or ':0\r\n' end
    out[n + 1] = r
    return n + 1
  elseif t == 'table' then
    local f = rawget(v, 'err')
    if type(f) == 'string' then out[n + 1] = '-' .. crlf_to_spaces(f) .. '\r\n' return n + 1 end
    f = rawget(v, 'ok')
    if type(f) == 'string' then out[n + 1] = '+' .. crlf_to_spaces(f) .. '\r\n' return n + 1 end
    f = rawget(v, 'double')
    if type(f) == 'number' then
      local d = sfmt('%.17g', f)
      if caller == 3 then out[n + 1] = ',' .. d .. '\r\n'
      else out[n + 1] = '$' .. #d .. '\r\n' .. d .. '\r\n' end
      return n + 1
    end
    f = rawget(v, 'big_number')
    if type(f) == 'string' then
      f = crlf_to_spaces(f)
      if caller == 3 then out[n + 1] = '(' .. f .. '\r\n'
      else out[n + 1] = '$' .. #f .. '\r\n' .. f .. '\r\n' end
      return n + 1
    end
    f = rawget(v, 'verbatim_string')
    if type(f) == 'table' then
      local fmt, str = rawget(f, 'format'), rawget(f, 'string')
      if type(fmt) == 'string' and type(str) == 'string' then
        if caller == 3 then
          local body = ssub(fmt .. '   ', 1, 3) .. ':' .. str
          out[n + 1] = '=' .. #body .. '\r\n' .. body .. '\r\n'
        else out[n + 1] = '$' .. #str .. '\r\n' .. str .. '\r\n' end
        return n + 1
      end
    end
    f = rawget(v, 'map')
    if type(f) == 'table' then
      local at, count = n + 1, 0
      out[at] = ''
      n = at
      for k, x in next, f do
        n = emit(k, out, n, resp, caller)
        n = emit(x, out, n, resp, caller)
        count = count + 1
      end
      out[at] = caller == 3 and ('%' .. count .. '\r\n') or ('*' .. 2 * count .. '\r\n')
      return n
    end
    f = rawget(v, 'set')
    if type(f) == 'table' then
      local at, count = n + 1, 0
      out[at] = ''
      n = at
      for k in next, f do
        n = emit(k, out, n, resp, caller)
        count = count + 1
      end
      out[at] = (caller == 3 and '~' or '*') .. count .. '\r\n'
      return n
    end
    local at, count = n + 1, 0
    out[at] = ''
    n = at
    while true do
      local x = rawget(v, count + 1)
      if x == nil then break end
      n = emit(x, out, n, resp, caller)
      count = count + 1
    end
    out[at] = '*' .. count .. '\r\n'
    return n
  else
    out[n + 1] = caller == 3 and '_\r\n' or '$-1\r\n'
    return n + 1
  end
end

-- --- the redis library -------------------------------------------------------------------

local function fail(is_pcall, text)
  if is_pcall then return {err = text} end
  error({err = text}, 0)
end

local function command(is_pcall, ...)
  local n = select('#', ...)
  if n == 0 then return fail(is_pcall, 'ERR Please specify at least one argument for this redis lib call') end
  local args = {...}
  for i = 1, n do
    local a = args[i]
    local t = type(a)
    if t == 'number' then
      args[i] = sfmt('%.17g', a)
    elseif t ~= 'string' then
      return fail(is_pcall, 'ERR Lua redis lib command arguments must be strings or integers')
    end
  end
  local reply = co_yield(CALL, 'c', current.resp, unpack(args, 1, n))
  local value, _, is_err
  if type(reply) == 'table' then value, _, is_err = parse_parts(reply)
  else value, _, is_err = parse(reply, 1) end
  if is_err and not is_pcall then error(value, 0) end
  return value
end

local redis = {}
redis.call = function(...) return command(false, ...) end
redis.pcall = function(...) return command(true, ...) end

redis.error_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  if sbyte(s, 1) ~= 45 then s = '-' .. s end
  local sp = sfind(s, ' ', 1, true)
  local code, msg
  if sp then code, msg = ssub(s, 2, sp - 1), ssub(s, sp + 1) else code, msg = 'ERR', ssub(s, 2) end
  msg = sgsub(sgsub(msg, '^[\r\n]+', ''), '[\r\n]+$', '')
  return {err = code .. ' ' .. msg}
end

redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = s}
end

local py_sha1hex = py.sha1hex
redis.sha1hex = function(...)
  if select('#', ...) ~= 1 then error({err = 'ERR wrong number of arguments'}, 0) end
  local s = ...
  if type(s) == 'number' then s = tostring(s) elseif type(s) ~= 'string' then s = '' end
  return py_sha1hex(s)
end

redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
local py_log = py.log
local function log(...)
  local n = select('#', ...)
  if n < 2 then error({err = 'ERR redis.log() requires two arguments or more.'}, 0) end
  local level = ...
  if type(level) ~= 'number' then error({err = 'ERR First argument must be a number'}, 0) end
  if level < 0 or level > 3 then error({err = 'ERR Invalid debug level.'}, 0) end
  local parts = {}
  for i = 2, n do
    local a = select(i, ...)
    if type(a) == 'string' or type(a) == 'number' then parts[#parts + 1] = tostring(a) end
  end
  py_log(level, tconcat(parts, ' '))
end
redis.log = log

redis.setresp = function(...)
  if select('#', ...) ~= 1 then error({err = 'ERR redis.setresp() requires one argument.'}, 0) end
  local v = ...
  if v ~= 2 and v ~= 3 then error({err = 'ERR RESP version must be 2 or 3.'}, 0) end
  current.resp = v
end

redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.replicate_commands = function() return true end
redis.set_repl = function(...)
  if select('#', ...) ~= 1 then error({err = 'ERR redis.set_repl() requires one argument.'}, 0) end
  local v = ...
  if type(v) ~= 'number' or v < 0 or v > 3 then
    error({err = 'ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.'}, 0)
  end
end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = function(...)
  local n = select('#', ...)
  if n == 0 then error({err = 'ERR Please specify at least one argument for this redis lib call'}, 0) end
  local args = {...}
  for i = 1, n do
    local a = args[i]
    if type(a) == 'number' then args[i] = sfmt('%.17g', a)
    elseif type(a) ~= 'string' then
      error({err = 'ERR Lua redis lib command arguments must be strings or integers'}, 0)
    end
  end
  local reply = co_yield(CALL, 'a', current.resp, unpack(args, 1, n))
  local value, _, is_err = parse(reply, 1)
  if is_err then error(value, 0) end
  return value == 1
end
redis.REDIS_VERSION = py.version
redis.REDIS_VERSION_NUM = py.version_num

-- --- cjson and bit (their work done in Python) ------------------------------------------

local null = newproxy()
local py_json_encode, py_json_decode = py.json_encode, py.json_decode

local function json_result(ok, v)
  if not ok then error(v, 3) end
  return v
end

local cjson = {
  null = null,
  encode = function(v)
    local r = json_result(py_json_encode(v, null))
    return r
  end,
  decode = function(s)
    if type(s) ~= 'string' and type(s) ~= 'number' then
      error("bad argument #1 to 'decode' (string expected, got " .. type(s) .. ')', 2)
    end
    local r = json_result(py_json_decode(tostring(s), null))
    return r
  end,
  encode_keep_buffer = function() end,
  encode_max_depth = function() end,
  decode_max_depth = function() end,
  encode_number_precision = function() end,
  encode_invalid_numbers = function() end,
  decode_invalid_numbers = function() end,
  encode_sparse_array = function() end,
  _NAME = 'cjson', _VERSION = '2.1.0',
}

local py_bit = py.bit
local function bitop(name)
  local f = py_bit[name]
  return function(...)
    local n = select('#', ...)
    local args = {...}
    for i = 1, (n > 0 and n or 1) do
      local x = tonumber(args[i])
      if x == nil then
        local got = i > n and 'no value' or type(args[i])
        error(sfmt("bad argument #%d to '%s' (number expected, got %s)", i, name, got), 2)
      end
      args[i] = x
    end
    return f(unpack(args, 1, n))
  end
end
local bit = {}
for _, name in ipairs({'tobit', 'tohex', 'bnot', 'band', 'bor', 'bxor', 'lshift', 'rshift',
                       'arshift', 'rol', 'ror', 'bswap'}) do
  bit[name] = bitop(name)
end

-- --- the sandbox ---------------------------------------------------------------------------

local KEEP = {
  assert = assert, collectgarbage = collectgarbage, error = error, gcinfo = gcinfo,
  getmetatable = getmetatable, ipairs = s_ipairs, load = s_load, loadstring = s_loadstring,
  next = s_next, pairs = s_pairs, pcall = s_pcall, rawequal = rawequal, rawget = s_rawget,
  rawset = s_rawset, select = select, setmetatable = s_setmetatable, tonumber = tonumber,
  tostring = tostring, type = type, unpack = unpack, xpcall = s_xpcall, _VERSION = _VERSION,
  __redis__err__handler = function(e) return e end,
}
local coroutine_lib = {create = s_create, resume = s_resume, wrap = s_wrap, yield = s_yield,
                       status = co_status, running = co_running}
local string_lib, table_lib, math_lib = string, table, math

for k in pairs(G) do
  if k ~= '_G' then G[k] = nil end
end
for k, v in pairs(KEEP) do G[k] = v end
G.string = readonly(string_lib)
G.table = readonly(table_lib)
G.math = readonly(math_lib)
G.coroutine = readonly(coroutine_lib)
G.cjson = readonly(cjson)
G.bit = readonly(bit)
local REDIS = readonly(redis)
G.redis = REDIS

-- strings' methods: the metatable a script can see is a readonly copy
local string_mt = getmetatable('')
string_mt.__metatable = readonly({__index = G.string})

ENV = setmetatable({}, {
  __index = function(_, k)
    local v = rawget(G, k)
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = readonly_error,
  __metatable = false,
})
real_of[ENV] = G
G._G = ENV

-- --- running scripts -----------------------------------------------------------------------

-- Where an error happened: the innermost frame that is neither C nor this bridge.
local function blame(co)
  for level = 0, 200 do
    local info = getinfo(co, level, 'Sl')
    if info == nil then return nil end
    if info.what ~= 'C' and info.what ~= 'tail' and info.source ~= BRIDGE then return info end
  end
end

local function error_reply(run, co, e)
  local msg
  if type(e) == 'table' then
    msg = rawget(e, 'err')
    if type(msg) ~= 'string' then msg = 'ERR unknown error' end
  else
    msg = 'ERR ' .. tostring(e)
  end
  local info = blame(co)
  if info and info.currentline and info.currentline > 0 then
    msg = msg .. ' script: ' .. run.name .. ', on ' .. info.source .. ':' .. info.currentline .. '.'
  end
  return '-' .. crlf_to_spaces(msg) .. '\r\n'
end

-- A run's reply longer than this is taken out a part a call (M.result_part): Python
-- holds its GIL while it copies a Lua string into its own.
local RESULT_PART = 1048576

local function outcome(run, ok, first, ...)
  local co = run.co
  if not ok then return 'error', error_reply(run, co, first) end
  if co_status(co) == 'dead' then
    local out = {}
    local n = emit(first, out, 0, run.resp, run.caller)
    local size = 0
    for i = 1, n do size = size + #out[i] end
    if size <= RESULT_PART then return 'done', tconcat(out, '', 1, n) end
    run.result = {out = out, n = n, i = 1, at = 0}
    return 'parts', size
  end
  if first == CALL then return 'call', ... end
  return outcome(run, co_resume(co, BAD_YIELD))
end

-- The next part of the run's long reply (nil after the last): a slice of a long piece
-- of it (a large value), or short ones joined, RESULT_PART bytes at most; the reply's
-- pieces are not joined first (a copy of a large value less).
function M.result_part(run)
  local r = run.result
  local out, n, i, at = r.out, r.n, r.i, r.at
  if i > n then
    run.result = nil
    return nil
  end
  local piece = out[i]
  if at > 0 or #piece > RESULT_PART then
    local part = ssub(piece, at + 1, at + RESULT_PART)
    at = at + #part
    if at >= #piece then i, at = i + 1, 0 end
    r.i, r.at = i, at
    return part
  end
  local j, size = i, #piece
  while j < n and size + #out[j + 1] <= RESULT_PART do
    j = j + 1
    size = size + #out[j]
  end
  r.i = j + 1
  return tconcat(out, '', i, j)
end

-- A run: its coroutine, KEYS and ARGV (scripts) and the protocols in use.
function M.start(fn, keys, argv, caller, name, is_function)
  local run = {resp = 2, caller = caller, name = name}
  if is_function then
    run.co = new_co(function() return fn(keys, argv) end)
  else
    run.co = new_co(fn)
    run.keys, run.argv = keys, argv
  end
  return run
end

-- A reply in parts (a large value, made over the node's loop turns): all but the last
-- come one a call, the last with resume, which hands redis.call all of them
-- (parse_parts).
function M.part(run, s)
  local parts = run.parts
  if parts == nil then
    parts = {n = 0}
    run.parts = parts
  end
  parts.n = parts.n + 1
  parts[parts.n] = s
end

function M.resume(run, value)
  local parts = run.parts
  if parts ~= nil then
    run.parts = nil
    parts.n = parts.n + 1
    parts[parts.n] = value
    value = parts
  end
  current = run
  rawset(G, 'KEYS', run.keys)
  rawset(G, 'ARGV', run.argv)
  return outcome(run, co_resume(run.co, value))
end

local sdump, py_untail = string.dump, py.untail

-- Compiles user code with its tail calls made plain calls (see untail.py).
local function compile(code, name)
  local f, e = loadstring(code, name)
  if not f then return nil, e end
  f = loadstring(py_untail(sdump(f)), name)
  setfenv(f, ENV)
  return f
end

local function strip_shebang(code)
  if ssub(code, 1, 2) ~= '#!' then return code end
  local nl = sfind(code, '\n', 1, true)
  if not nl then return '' end
  return ssub(code, nl)
end

-- EVAL's script: a function, or the compile error.
function M.compile(body)
  local f, e = compile(strip_shebang(body), '@user_script')
  if not f then return nil, 'ERR Error compiling script (new function): ' .. e end
  return f
end

-- --- function libraries ---------------------------------------------------------------------

local FLAGS = {['no-writes'] = true, ['allow-oom'] = true, ['allow-stale'] = true,
               ['no-cluster'] = true, ['allow-cross-slot-keys'] = true}
local BAD_NAME = 'ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long'

local function valid_name(s)
  return type(s) == 'string' and #s > 0 and not sfind(s, '[^%w_]')
end

-- Runs a library's code with a redis table that only registers functions; returns the
-- registrations ({name, callback, flags list, description} each) or nil and the error.
function M.load_library(code)
  local f, e = compile(strip_shebang(code), '@user_function')
  if not f then return nil, 'ERR Error compiling function: ' .. e end
  local registered, seen = {}, {}
  local function register(name, callback, flags, desc)
    if not valid_name(name) then error({err = BAD_NAME}, 0) end
    if seen[name] then error({err = 'ERR Function already exists in the library'}, 0) end
    seen[name] = true
    registered[#registered + 1] = {name = name, callback = callback, flags = flags or {}, description = desc}
  end
  local api = {
    register_function = function(...)
      local n = select('#', ...)
      local a, b = ...
      if n == 1 and type(a) == 'table' then
        local name, callback, flags, desc
        for k, v in pairs(a) do
          if k == 'function_name' then
            if type(v) ~= 'string' then error({err = 'ERR function_name argument given to redis.register_function must be a string'}, 0) end
            name = v
          elseif k == 'description' then
            if type(v) ~= 'string' then error({err = 'ERR description argument given to redis.register_function must be a string'}, 0) end
            desc = v
          elseif k == 'callback' then
            if type(v) ~= 'function' then error({err = 'ERR callback argument given to redis.register_function must be a function'}, 0) end
            callback = v
          elseif k == 'flags' then
            if type(v) ~= 'table' then error({err = 'ERR flags argument to redis.register_function must be a table representing function flags'}, 0) end
            flags = {}
            for _, fl in ipairs(v) do
              if type(fl) ~= 'string' or not FLAGS[fl] then error({err = 'ERR unknown flag given'}, 0) end
              flags[#flags + 1] = fl
            end
          else
            error({err = 'ERR unknown argument given to redis.register_function'}, 0)
          end
        end
        if name == nil then error({err = 'ERR redis.register_function must get a function name argument'}, 0) end
        if callback == nil then error({err = 'ERR redis.register_function must get a callback argument'}, 0) end
        return register(name, callback, flags, desc)
      end
      if n ~= 2 then error({err = 'ERR wrong number of arguments to redis.register_function'}, 0) end
      if type(a) ~= 'string' then error({err = 'ERR function_name argument given to redis.register_function must be a string'}, 0) end
      if type(b) ~= 'function' then error({err = 'ERR callback argument given to redis.register_function must be a function'}, 0) end
      return register(a, b)
    end,
    log = log,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REDIS_VERSION = py.version, REDIS_VERSION_NUM = py.version_num,
  }
  local load_redis = setmetatable({}, {
    __index = function(_, k)
      local v = api[k]
      if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      return v
    end,
    __newindex = readonly_error, __metatable = false,
  })
  G.redis = load_redis
  current = {resp = 2, name = 'load'}
  local co = new_co(f)
  local ok, err = co_resume(co)
  G.redis = REDIS
  if ok and co_status(co) ~= 'dead' then
    ok, err = false, 'attempt to yield across metamethod/C-call boundary'
  end
  if not ok then
    local msg = type(err) == 'table' and rawget(err, 'err') or ('ERR ' .. tostring(err))
    return nil, 'ERR Error registering functions: ' .. tostring(msg)
  end
  if #registered == 0 then return nil, 'ERR No functions registered' end
  return registered
end

return M
