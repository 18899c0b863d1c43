"""redis-py against store-server: the client library most Python users have.

Run by `cargo test` (store/tests/redis_py.rs) with STORE_PORT set to a running store-server.
Plain asserts, no test framework needed; prints 'N passed, 0 failed' at the end.

The whole suite runs twice: with redis-py's default protocol (RESP3 since redis-py 8, which
connects with `HELLO 3`) and with `protocol=2`. redis-py maps both wires to the same Python
shapes, so the assertions are shared; each run checks that the server really spoke the protocol.
"""
import os
import sys
import threading
import time
import traceback

import redis

PORT = int(os.environ["STORE_PORT"])
# Connection options of the current run: {} (redis-py's default) or {"protocol": 2}.
OPTIONS = {}
r = None
results = {"passed": 0, "failed": 0}


def client(**kw):
    """A client of the current run's protocol."""
    return redis.Redis(host="127.0.0.1", port=PORT, **OPTIONS, **kw)


def check(name, fn):
    r.flushall()
    try:
        fn()
        results["passed"] += 1
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - report any failure with its test name
        results["failed"] += 1
        where = traceback.extract_tb(e.__traceback__)[-1]
        print(f"FAIL {name}: {e!r} at line {where.lineno}: {where.line}")


def strings():
    assert r.set("k", "v") is True
    assert r.get("k") == "v"
    assert r.set("k", "w", nx=True) is None
    assert r.set("k", "w", xx=True, ex=100) is True
    assert 99 <= r.ttl("k") <= 100
    assert r.incr("n") == 1 and r.incrby("n", 10) == 11 and r.decr("n") == 10
    assert abs(r.incrbyfloat("f", 1.5) - 1.5) < 1e-9
    assert r.append("k", "x") == 2 and r.strlen("k") == 2
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "b", "nope") == ["1", "2", None]
    assert r.getrange("k", 0, 0) == "w"
    assert r.getset("a", "9") == "1" and r.getdel("a") == "9" and r.get("a") is None
    try:
        r.incr("k")
        raise AssertionError("INCR on a non-number must fail")
    except redis.ResponseError as e:
        assert "not an integer" in str(e)


def lists():
    assert r.rpush("l", "a", "b", "c") == 3
    assert r.lpush("l", "z") == 4
    assert r.lrange("l", 0, -1) == ["z", "a", "b", "c"]
    assert r.lindex("l", 1) == "a" and r.llen("l") == 4
    assert r.lpop("l") == "z" and r.rpop("l") == "c"
    r.lset("l", 0, "A")
    assert r.lrange("l", 0, -1) == ["A", "b"]
    assert r.lrem("l", 0, "b") == 1
    r.ltrim("l", 0, 0)
    assert r.lrange("l", 0, -1) == ["A"]


def hashes():
    assert r.hset("h", mapping={"f1": "v1", "f2": "v2"}) == 2
    assert r.hget("h", "f1") == "v1"
    assert r.hgetall("h") == {"f1": "v1", "f2": "v2"}
    assert r.hincrby("h", "n", 5) == 5
    assert sorted(r.hkeys("h")) == ["f1", "f2", "n"] and r.hlen("h") == 3
    assert r.hexists("h", "f2") and r.hdel("h", "f2") == 1
    assert r.hmget("h", ["f1", "missing"]) == ["v1", None]


def sets():
    assert r.sadd("s", "a", "b", "c") == 3
    assert r.sismember("s", "a") and not r.sismember("s", "z")
    assert r.smembers("s") == {"a", "b", "c"} and r.scard("s") == 3
    r.sadd("t", "b", "c", "d")
    assert r.sinter("s", "t") == {"b", "c"}
    assert r.sunion("s", "t") == {"a", "b", "c", "d"}
    assert r.sdiff("s", "t") == {"a"}
    assert r.srem("s", "a") == 1
    assert r.spop("t") in {"b", "c", "d"}


def zsets():
    assert r.zadd("z", {"a": 1, "b": 2, "c": 3}) == 3
    assert r.zscore("z", "b") == 2.0 and r.zcard("z") == 3
    assert r.zrange("z", 0, -1) == ["a", "b", "c"]
    assert r.zrange("z", 0, -1, withscores=True) == [("a", 1.0), ("b", 2.0), ("c", 3.0)]
    assert r.zrangebyscore("z", 2, "+inf") == ["b", "c"]
    assert r.zincrby("z", 10, "a") == 11.0
    assert r.zrank("z", "a") == 2 and r.zrem("z", "a") == 1


def pubsub():
    p = r.pubsub()
    p.subscribe("news")
    p.psubscribe("ne*")
    assert p.get_message(timeout=2)["type"] == "subscribe"
    assert p.get_message(timeout=2)["type"] == "psubscribe"
    assert r.pubsub_numsub("news") == [("news", 1)]
    assert "news" in r.pubsub_channels()
    assert r.publish("news", "hello") == 2
    got = []
    deadline = time.time() + 5
    while len(got) < 2 and time.time() < deadline:
        m = p.get_message(timeout=1)
        if m and m["type"] in ("message", "pmessage"):
            got.append((m["type"], m["data"]))
    assert sorted(got) == [("message", "hello"), ("pmessage", "hello")], got
    p.close()


def transactions():
    pipe = r.pipeline(transaction=True)
    pipe.set("x", 1).incr("x").get("x")
    assert pipe.execute() == [True, 2, "2"]
    # WATCH: a concurrent write makes EXEC fail.
    r.set("w", "0")
    with r.pipeline() as p:
        p.watch("w")
        other = client()
        other.set("w", "changed")
        p.multi()
        p.set("w", "mine")
        try:
            p.execute()
            raise AssertionError("EXEC must fail after a watched key changed")
        except redis.WatchError:
            pass
    assert r.get("w") == "changed"
    # Unwatched transaction goes through.
    with r.pipeline() as p:
        p.watch("w")
        p.multi()
        p.set("w", "mine")
        assert p.execute() == [True]


def connection_and_server():
    assert r.ping() is True
    assert r.echo("hi") == "hi"
    assert r.dbsize() == 0
    r.set("a", "1")
    info = r.info()
    assert info["redis_version"].startswith("7.") and info["role"] == "master"
    assert r.info("keyspace") == {"db0": {"keys": 1, "expires": 0, "avg_ttl": 0}}
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    r.client_setname("py")
    assert r.client_getname() == "py"
    assert any(c["name"] == "py" for c in r.client_list())
    db1 = client(db=1, decode_responses=True)
    db1.set("a", "other")
    assert r.get("a") == "1" and db1.get("a") == "other"
    assert [k for k in r.scan_iter("*")] == ["a"]
    assert len(r.time()) == 2


def many_clients():
    errors = []

    def worker(i):
        c = client()
        try:
            for j in range(200):
                c.incr("counter")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert r.get("counter") == "1600"


def replies_of_every_shape():
    """Replies whose wire type differs between RESP2 and RESP3 (maps, sets, doubles, nulls,
    score pairs, verbatim strings): redis-py must give the same Python values for both."""
    assert r.get("missing") is None and r.hget("missing", "f") is None
    assert r.lpop("missing", 2) is None
    assert r.hgetall("missing") == {} and r.smembers("missing") == set()
    assert r.spop("missing", 2) in ([], set())
    r.sadd("s", "a", "b", "c")
    popped = r.spop("s", 2)
    assert len(popped) == 2 and set(popped) <= {"a", "b", "c"}
    assert r.zadd("z", {"a": 0.1, "b": float("inf")}) == 2
    assert r.zscore("z", "a") == 0.1 and r.zscore("z", "b") == float("inf")
    assert r.zscore("z", "missing") is None
    assert r.zmscore("z", ["a", "missing"]) == [0.1, None]
    assert r.zadd("z", {"a": 1}, incr=True) == 1.1
    assert r.zadd("z", {"a": 1}, incr=True, nx=True) is None
    assert r.zincrby("z", -0.1, "a") == 1.0
    assert r.zrangebyscore("z", "-inf", "+inf", withscores=True) == [("a", 1.0), ("b", float("inf"))]
    assert r.zrevrange("z", 0, -1, withscores=True) == [("b", float("inf")), ("a", 1.0)]
    # redis-py keeps ZRANDMEMBER's legacy flat shape, scores left as text (str or bytes).
    flat = r.zrandmember("z", 5, withscores=True)
    pairs = sorted((m, float(s.decode() if isinstance(s, bytes) else s)) for m, s in zip(flat[::2], flat[1::2]))
    assert pairs == [("a", 1.0), ("b", float("inf"))], flat
    assert r.zpopmin("z") == [("a", 1.0)]
    assert r.zpopmax("z", 1) == [("b", float("inf"))]
    assert r.zpopmin("z") == [] and r.zpopmin("z", 3) == []
    r.hset("h", "f", "v")
    assert r.hrandfield("h", 1, withvalues=True) in (["f", "v"], [["f", "v"]])
    assert r.hrandfield("missing") is None
    assert r.incrbyfloat("fl", 0.5) == 0.5 and r.hincrbyfloat("h", "n", 2.5) == 2.5
    assert r.config_get("maxmemory*")["maxmemory"] == "0"
    assert r.info("keyspace")["db0"]["keys"] == r.dbsize() == 3
    info = r.client_info()
    assert info["id"] and info["resp"] == str(OPTIONS.get("protocol", 3)), info
    assert r.pubsub_numsub("nobody") == [("nobody", 0)]
    # An aborted transaction (a watched key changed) is a null reply in both protocols.
    with r.pipeline() as p:
        p.watch("s")
        r.sadd("s", "new")
        p.multi()
        p.get("s")
        try:
            p.execute()
            raise AssertionError("EXEC must fail after a watched key changed")
        except redis.WatchError:
            pass


def protocol_switching():
    """HELLO switches the connection's protocol both ways; RESET returns to RESP2. (A RESP3
    client whatever the run: only its parser reads both protocols' replies.)"""
    c = redis.Redis(host="127.0.0.1", port=PORT, decode_responses=True, single_connection_client=True)
    try:
        hello = c.execute_command("HELLO", "3")
        assert hello["proto"] == 3 and hello["server"] == "redis", hello
        assert c.execute_command("HELLO")["proto"] == 3
        c.hset("h", "f", "v")
        assert c.execute_command("HGETALL", "h") == {"f": "v"}
        hello = c.execute_command("HELLO", "2")
        assert isinstance(hello, list) and dict(zip(hello[::2], hello[1::2]))["proto"] == 2, hello
        assert c.execute_command("HGETALL", "h") == ["f", "v"]
        assert c.execute_command("CLIENT", "INFO").split("resp=")[1].strip() == "2"
        c.execute_command("HELLO", "3")
        assert c.execute_command("RESET") == "RESET"
        assert c.execute_command("CLIENT", "INFO").split("resp=")[1].strip() == "2"
        try:
            c.execute_command("HELLO", "4")
            raise AssertionError("HELLO 4 must fail")
        except redis.ResponseError as e:
            assert "NOPROTO" in str(e)
    finally:
        c.close()


def pubsub_while_subscribed():
    """In RESP3 a subscribed connection may run any command (Redis's rule), and its own
    PUBLISH delivers to itself; in RESP2 only the subscribe commands are allowed."""
    p = r.pubsub()
    p.subscribe("self")
    assert p.get_message(timeout=2)["type"] == "subscribe"
    conn = p.connection
    if OPTIONS.get("protocol") == 2:
        conn.send_command("GET", "k")
        try:
            conn.read_response()
            raise AssertionError("GET must be refused in RESP2 subscribe context")
        except redis.ResponseError as e:
            assert "only (P|S)SUBSCRIBE" in str(e)
    else:
        r.set("k", "v")
        conn.send_command("GET", "k")
        assert conn.read_response() in ("v", b"v")
        conn.send_command("PUBLISH", "self", "to-me")
        # The message (a push frame) comes before the PUBLISH reply, as with Redis.
        replies = [conn.read_response(push_request=True) for _ in range(2)]
        assert replies == [["message", "self", "to-me"], 1], replies
    p.close()


def job_queue():
    """A job queue as Sidekiq/RQ-style workers run one: workers block on BRPOPLPUSH (the reliable
    pattern: the job moves to a processing list, removed when done) and BLMOVE, a producer
    pushes while they wait. Every job is done exactly once and nothing is left behind."""
    jobs = [f"job-{i}" for i in range(300)]
    done, errors = [], []
    lock = threading.Lock()

    def worker(i):
        c = client(decode_responses=True)
        try:
            while True:
                if i % 2:
                    job = c.brpoplpush("queue", f"processing:{i}", timeout=1)
                else:
                    job = c.blmove("queue", f"processing:{i}", 1, "RIGHT", "LEFT")
                if job is None:
                    return
                if job == "stop":
                    c.lrem(f"processing:{i}", 1, job)
                    return
                with lock:
                    done.append(job)
                assert c.lrem(f"processing:{i}", 1, job) == 1
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            c.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in workers:
        t.start()
    time.sleep(0.2)  # the workers are blocked before the first job arrives
    for start in range(0, len(jobs), 50):
        r.lpush("queue", *jobs[start:start + 50])
        time.sleep(0.01)
    r.lpush("queue", *["stop"] * len(workers))
    for t in workers:
        t.join(timeout=20)
    assert not errors, errors
    assert sorted(done) == sorted(jobs), (len(done), len(set(done)))
    assert r.exists("queue") == 0
    assert [k for k in r.scan_iter("processing:*")] == []
    # Timeouts and the other blocking pops, through redis-py's own methods.
    started = time.monotonic()
    assert r.blpop(["nothing"], timeout=0.2) is None
    assert time.monotonic() - started >= 0.2
    r.rpush("a", "x", "y")
    assert list(r.blpop(["none", "a"], timeout=1)) == ["a", "x"]
    assert list(r.brpop(["a"], timeout=1)) == ["a", "y"]
    r.rpush("m", 1, 2, 3)
    assert r.blmpop(1, 2, "none", "m", direction="LEFT", count=2) == ["m", ["1", "2"]]
    assert r.lmpop(1, "m", direction="RIGHT") == ["m", ["3"]]
    r.zadd("z", {"low": 1, "high": 2})
    assert list(r.bzpopmax(["z"], timeout=1)) == ["z", "high", 2.0]
    key, items = r.zmpop(1, ["z"], min=True)
    assert (key, [[m, float(s)] for m, s in items]) == ("z", [["low", 1.0]])
    # A worker woken by another client's push, and CLIENT UNBLOCK.
    waiter = client(decode_responses=True)
    waiter_id = waiter.client_id()
    result = {}
    t = threading.Thread(target=lambda: result.update(v=waiter.blpop(["wake"], timeout=5)))
    t.start()
    time.sleep(0.2)
    assert r.client_unblock(waiter_id) == 1
    t.join()
    assert result["v"] is None
    t = threading.Thread(target=lambda: result.update(v=waiter.blpop(["wake"], timeout=5)))
    t.start()
    time.sleep(0.2)
    r.rpush("wake", "up")
    t.join()
    assert list(result["v"]) == ["wake", "up"]
    waiter.close()


def scripts():
    """What applications run as Lua: redis-py's Lock (acquire, extend and release are scripts
    run by EVALSHA), a fixed-window rate limiter, and register_script's EVALSHA-then-EVAL."""
    lock = r.lock("resource", timeout=5, blocking_timeout=1)
    assert lock.acquire()
    other = r.lock("resource", timeout=5, blocking_timeout=0.2)
    assert not other.acquire()
    assert lock.extend(5)
    assert 5000 < r.pttl("resource") <= 10000
    lock.release()
    assert other.acquire()
    other.release()
    assert r.exists("resource") == 0
    try:
        lock.release()
        raise AssertionError("released a lock it no longer holds")
    except redis.exceptions.LockError:
        pass
    limiter = r.register_script("""
        local n = redis.call('INCR', KEYS[1])
        if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        if n > tonumber(ARGV[1]) then return {0, n} end
        return {1, n}
    """)
    results = [limiter(keys=["rate:user1"], args=[3, 60000]) for _ in range(5)]
    assert [allowed for allowed, _ in results] == [1, 1, 1, 0, 0], results
    assert r.ttl("rate:user1") > 0
    r.script_flush()
    assert limiter(keys=["rate:user2"], args=[3, 60000]) == [1, 1]  # NOSCRIPT, then EVAL again
    assert r.eval("return {KEYS[1], ARGV[1], 3.7, true, false}", 1, "k", "a") == ["k", "a", 3, 1, None]
    assert r.eval_ro("return redis.call('get', KEYS[1])", 1, "nothing") is None
    try:
        r.eval_ro("return redis.call('set', KEYS[1], 'x')", 1, "k")
        raise AssertionError("EVAL_RO wrote")
    except redis.exceptions.ResponseError as e:
        assert "Write commands are not allowed from read-only scripts" in str(e), e
    assert r.script_exists(limiter.sha) == [True]


RUNS = [("default protocol (RESP3)", {}), ("protocol=2", {"protocol": 2})]
TESTS = [
    ("strings", strings),
    ("lists", lists),
    ("hashes", hashes),
    ("sets", sets),
    ("zsets", zsets),
    ("pubsub", pubsub),
    ("transactions", transactions),
    ("connection_and_server", connection_and_server),
    ("many_clients", many_clients),
    ("replies_of_every_shape", replies_of_every_shape),
    ("protocol_switching", protocol_switching),
    ("pubsub_while_subscribed", pubsub_while_subscribed),
    ("job_queue", job_queue),
    ("scripts", scripts),
]
for label, options in RUNS:
    print(f"== {label}")
    OPTIONS = options
    r = client(decode_responses=True)
    for name, fn in TESTS:
        check(f"{name} [{label}]", fn)
    r.close()

print(f"{results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
