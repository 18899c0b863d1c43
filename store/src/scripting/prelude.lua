-- The part of the scripting API written in Lua (loaded once per Lua state, as chunk "=redis").
--
-- Why in Lua: Redis raises errors whose value is a table ({err = "..."}), and a Rust callback
-- can only raise a userdata. So each Rust function returns (ok, value) and the wrappers here
-- raise; the error handler and Redis's `pcall` (which turns an error table into its message)
-- are Lua as in Redis (`__redis__err__handler`, `luaRedisPcall`).
local rt = ...
local getinfo, lua_pcall, lua_error, type, tostring, tonumber, select =
    debug.getinfo, pcall, error, type, tostring, tonumber, select

-- redis.call, redis.pcall, redis.sha1hex and redis.log are C functions (`raising` in mod.rs)
-- over rt.raw, rt.sha1hex and rt.log, so that a script's frame stays on the stack when it calls
-- them in tail position.

redis.set_repl = function(...)
    local ok, v = rt.set_repl(...)
    if not ok then
        lua_error(v)
    end
    rt.repl = v
end
redis.setresp = function(...)
    if select('#', ...) ~= 1 then
        lua_error({err = 'ERR redis.setresp() requires one argument.'})
    end
    local v = tonumber((...)) or 0
    if v ~= 2 and v ~= 3 then
        lua_error({err = 'ERR RESP version must be 2 or 3.'})
    end
    rt.resp = v
end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end

-- Redis's error handler: the error as a table, with the script's source and line where it
-- happened (the first frame that is neither C nor this prelude).
rt.handler = function(err)
    local level = 2
    local i = getinfo(level, 'nSl')
    while i and (i.what == 'C' or i.source == '=redis') do
        level = level + 1
        i = getinfo(level, 'nSl')
    end
    if type(err) ~= 'table' then
        err = {err = 'ERR ' .. tostring(err)}
    end
    if i then
        err['source'] = i.source
        err['line'] = i.currentline
    end
    return err
end

-- Redis's pcall: an error table caught by pcall gives its message.
local function fix(ok, ...)
    if ok then
        return ok, ...
    end
    local e = ...
    if type(e) == 'table' and type(e.err) == 'string' then
        e = e.err
    end
    return false, e
end
pcall = function(f, ...)
    return fix(lua_pcall(f, ...))
end

-- Runs a script function under the handler: (true, result) or (false, error table).
rt.run = function(f)
    return xpcall(f, rt.handler)
end
