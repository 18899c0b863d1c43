#!/usr/bin/env python3
"""Our sentinel (store-sentinel) next to redis-sentinel 7, in the same run; run by ci/bench-sentinel.

Both arms monitor real redis-server data nodes with the same sentinel.conf (down-after-milliseconds
2000, failover-timeout 10000), so only the sentinel differs:

1. Failover: a fresh group per failover (a master, two replicas, three sentinels of one kind,
   quorum 2). Two clients write continuously, every PACE_S: redis-py's
   Sentinel(...).master_for('mymaster') (which asks SENTINEL MASTERS and skips a master flagged
   s_down/o_down), and a loop that asks SENTINEL GET-MASTER-ADDR-BY-NAME (the sentinels in turn,
   moving on after any failure) and writes to the address. The master is killed with SIGKILL;
   each client's time is from the kill to its first write that succeeds on another node. The
   sentinels' events (PSUBSCRIBE *) are timed from the kill too. Trials alternate ours/redis.
2. Resource use: one sentinel monitoring 1 master, then one monitoring MASTERS masters (one
   redis-server each, no replicas), each watched for WINDOW_S after WARMUP_S: CPU seconds from
   /proc/<pid>/stat (utime+stime, all threads) and VmRSS/VmHWM from /proc/<pid>/status.

Usage: sentinel-bench.py WORKDIR OUT
  WORKDIR: an empty temporary directory (every pid started is appended to WORKDIR/pids, so the
           caller's trap can kill what this script could not);
  OUT: the markdown for the results section (table and notes) is written there.
Environment: STORE_SENTINEL (path of store-sentinel), BENCH_SENTINEL_TRIALS (failovers per arm,
default 5), BENCH_SENTINEL_WINDOW (seconds, default 30), BENCH_SENTINEL_MASTERS (default 50),
BENCH_SENTINEL_EVIDENCE (directory kept after the run for the logs of a failed failover).
Exits 1 if a node cannot be started or a setup step times out; a failover that does not complete
within FAILOVER_DEADLINE_S is reported in the table (and its logs kept), not fatal.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 10000
TRIALS = int(os.environ.get("BENCH_SENTINEL_TRIALS", "5"))
WINDOW_S = float(os.environ.get("BENCH_SENTINEL_WINDOW", "30"))
MASTERS = int(os.environ.get("BENCH_SENTINEL_MASTERS", "50"))
WARMUP_S = 10.0
PACE_S = 0.002  # between two writes of one client, and between retries
FAILOVER_DEADLINE_S = 60.0  # kill to every sentinel's +switch-master and both clients' write
STORE_SENTINEL = os.environ.get("STORE_SENTINEL", "target/release/store-sentinel")
ARMS = ("ours", "redis")
HOST = "127.0.0.1"
# Failover trial t uses data ports FO_DATA + 10 t (+0 master, +1 and +2 replicas) and sentinel
# ports FO_SENT + 10 t (+0..+2); the resource runs use RES_DATA.. and RES_SENT...
FO_DATA, FO_SENT = 27000, 17000
RES_DATA, RES_SENT = 27500, 17600
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"sentinel-bench: {msg}", file=sys.stderr, flush=True)


class Fatal(Exception):
    pass


def client(port, timeout=1.0):
    return redis.Redis(HOST, port, socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0), decode_responses=True)


def pairs(reply):
    """A RESP2 flat array (or a RESP3 map) as a dict of str."""
    if isinstance(reply, dict):
        return {str(k): v for k, v in reply.items()}
    return {str(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}


def wait_until(what, cond, timeout, procs=()):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        for p in procs:
            p.check()
        try:
            if cond():
                return
        except (redis.RedisError, OSError, ValueError, KeyError, IndexError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise Fatal(f"timed out after {timeout} s waiting for {what} (last error: {last!r})")
        time.sleep(0.05)


class Proc:
    """A node: redis-server, redis-sentinel or store-sentinel, output in its log file."""

    def __init__(self, runner, name, argv, logpath):
        self.name, self.log = name, logpath
        with open(logpath, "ab") as out:
            self.p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        self.pid = self.p.pid
        runner.started(self)

    def check(self):
        if self.p.poll() is not None:
            raise Fatal(f"{self.name} exited with {self.p.returncode}:\n{tail(self.log)}")

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return repr(e)


class Runner:
    def __init__(self, work):
        self.work = work
        self.procs = []
        self.pidfile = open(os.path.join(work, "pids"), "a")

    def started(self, proc):
        self.procs.append(proc)
        self.pidfile.write(f"{proc.pid}\n")
        self.pidfile.flush()

    def stop(self, procs):
        for p in procs:
            p.stop()
            if p in self.procs:
                self.procs.remove(p)

    def stop_all(self):
        self.stop(list(self.procs))

    def port_free(self, port):
        try:
            client(port, 0.3).ping()
        except (redis.RedisError, OSError):
            return True
        return False

    def redis_server(self, port, d, replicaof=None):
        if not self.port_free(port):
            raise Fatal(f"port {port} already in use")
        os.makedirs(d, exist_ok=True)
        argv = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", d,
                "--repl-diskless-sync-delay", "0"]
        if replicaof:
            argv += ["--replicaof", HOST, str(replicaof)]
        p = Proc(self, f"redis-server:{port}", argv, os.path.join(d, "redis.log"))
        wait_until(f"redis-server on {port} to answer PING", lambda: client(port).ping(), 10, [p])
        return p

    def sentinel(self, arm, port, d, monitors):
        """monitors: (name, master port, quorum) triples; the same file for both arms."""
        if not self.port_free(port):
            raise Fatal(f"port {port} already in use")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "sentinel.conf")
        lines = [f"port {port}", f"bind {HOST}", "daemonize no", f"dir {d}", 'logfile ""']
        for name, mport, quorum in monitors:
            lines += [f"sentinel monitor {name} {HOST} {mport} {quorum}",
                      f"sentinel down-after-milliseconds {name} {DOWN_AFTER_MS}",
                      f"sentinel failover-timeout {name} {FAILOVER_TIMEOUT_MS}"]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        exe = STORE_SENTINEL if arm == "ours" else "redis-sentinel"
        p = Proc(self, f"{arm}-sentinel:{port}", [exe, conf], os.path.join(d, "sentinel.log"))
        p.conf = conf
        wait_until(f"{arm} sentinel on {port} to answer PING", lambda: client(port).ping(), 10, [p])
        return p


class Writer(threading.Thread):
    """Writes every PACE_S through the sentinels; records its first success after the kill."""

    def __init__(self, kind, sentinel_ports, old_master):
        super().__init__(daemon=True)
        self.kind, self.ports, self.old = kind, sentinel_ports, old_master
        self.halt = threading.Event()
        self.kill_at = None
        self.first_after = None  # (seconds after kill, address)
        self.ok = self.errors = 0
        self.last_error = None
        self.error_kinds = {}
        self.seq = 0
        if kind == "redis-py":
            timeouts = dict(socket_timeout=0.5, socket_connect_timeout=0.5,
                            retry=Retry(NoBackoff(), 0))
            self.sentinel = Sentinel([(HOST, p) for p in sentinel_ports],
                                     sentinel_kwargs=dict(timeouts), **timeouts)
            self.master = self.sentinel.master_for("mymaster")
        else:
            self.sentinels = [client(p, 0.5) for p in sentinel_ports]
            self.turn = 0
            self.conn = self.conn_addr = None

    def write_redis_py(self, key):
        self.master.set(key, self.seq)
        addr = self.master.connection_pool.master_address
        return (addr[0], int(addr[1])) if addr else None

    def write_addr(self, key):
        try:
            reply = self.sentinels[self.turn].execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
            addr = (reply[0], int(reply[1]))
            if addr != self.conn_addr:
                if self.conn is not None:
                    self.conn.close()
                self.conn, self.conn_addr = client(addr[1], 0.5), addr
            self.conn.set(key, self.seq)
            return addr
        except Exception:
            # Ask the next sentinel next time: a client does not know which one is the leader.
            self.turn = (self.turn + 1) % len(self.sentinels)
            if self.conn is not None:
                self.conn.close()
            self.conn = self.conn_addr = None
            raise

    def run(self):
        write = self.write_redis_py if self.kind == "redis-py" else self.write_addr
        while not self.halt.is_set():
            self.seq += 1
            kill_at = self.kill_at
            started = time.monotonic()
            try:
                addr = write(f"{self.kind}:{self.seq}")
            except (redis.RedisError, OSError, ValueError, TypeError, IndexError) as e:
                self.errors += 1
                self.last_error = repr(e)
                k = type(e).__name__
                self.error_kinds[k] = self.error_kinds.get(k, 0) + 1
            else:
                self.ok += 1
                if (kill_at is not None and self.first_after is None and started >= kill_at
                        and addr is not None and addr != self.old):
                    self.first_after = (time.monotonic() - kill_at, addr)
            time.sleep(PACE_S)


class Events(threading.Thread):
    """PSUBSCRIBE * on one sentinel: (monotonic time, channel, message) of every event."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.halt = threading.Event()
        self.events = []
        self.error = None
        self.pubsub = client(port, 5).pubsub()
        self.pubsub.psubscribe("*")
        # Wait for the subscription's confirmation, so no event after this is missed.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            m = self.pubsub.get_message(timeout=0.1)
            if m and m["type"] == "psubscribe":
                break
        else:
            raise Fatal(f"PSUBSCRIBE * on sentinel {port} not confirmed")

    def run(self):
        try:
            while not self.halt.is_set():
                m = self.pubsub.get_message(timeout=0.1)
                if m and m["type"] == "pmessage":
                    self.events.append((time.monotonic(), m["channel"], m["data"]))
        except (redis.RedisError, OSError) as e:
            self.error = repr(e)
        finally:
            try:
                self.pubsub.close()
            except Exception:
                pass

    def first(self, channel, prefix="", after=0.0):
        for t, ch, data in self.events:
            if ch == channel and data.startswith(prefix) and t >= after:
                return t
        return None


def median_cell(values, fmt="{:.0f}"):
    if not values:
        return "n/a"
    m = statistics.median(values)
    if len(values) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


class Bench:
    def __init__(self, work):
        self.work = work
        self.runner = Runner(work)
        self.trials = {arm: [] for arm in ARMS}  # dicts of ms values, or failure notes
        self.resources = {}  # (arm, masters) -> dict
        self.failures = []  # text for the notes under the table
        self.evidence = os.environ.get("BENCH_SENTINEL_EVIDENCE")

    # ----- failover -----

    def group_ready(self, sentinel_ports, replica_ports):
        want = {(HOST, p) for p in replica_ports}
        for sp in sentinel_ports:
            c = client(sp)
            m = pairs(c.execute_command("SENTINEL", "MASTER", "mymaster"))
            if m.get("flags") != "master" or int(m.get("num-slaves", 0)) != 2 \
                    or int(m.get("num-other-sentinels", 0)) != 2:
                return False
            reps = [pairs(r) for r in c.execute_command("SENTINEL", "REPLICAS", "mymaster")]
            if {(r["ip"], int(r["port"])) for r in reps} != want:
                return False
            if any(r.get("flags") != "slave" or r.get("master-link-status") != "ok" for r in reps):
                return False
        return True

    def failover_trial(self, arm, t):
        d = os.path.join(self.work, f"failover-{t}-{arm}")
        dp = [FO_DATA + 10 * t + i for i in range(3)]
        sp = [FO_SENT + 10 * t + i for i in range(3)]
        r = self.runner
        master = r.redis_server(dp[0], os.path.join(d, f"node{dp[0]}"))
        replicas = [r.redis_server(p, os.path.join(d, f"node{p}"), replicaof=dp[0]) for p in dp[1:]]
        data = [master] + replicas

        def synced():
            info = client(dp[0]).info("replication")
            return info.get("connected_slaves") == 2 and all(
                info.get(f"slave{i}", {}).get("state") == "online" for i in range(2))
        wait_until(f"replicas of {dp[0]} online", synced, 30, data)
        sentinels = [r.sentinel(arm, p, os.path.join(d, f"sentinel{p}"), [("mymaster", dp[0], 2)])
                     for p in sp]
        wait_until(f"{arm} sentinels {sp} to know 2 replicas and 2 other sentinels",
                   lambda: self.group_ready(sp, dp[1:]), 60, data + sentinels)
        listeners = [Events(p) for p in sp]
        writers = [Writer(kind, sp, (HOST, dp[0])) for kind in ("redis-py", "addr")]
        for th in listeners + writers:
            th.start()
        try:
            wait_until("both clients writing", lambda: all(w.ok >= 100 for w in writers), 30,
                       data + sentinels)
            time.sleep(1.0)
            for w in writers:
                if w.errors:
                    raise Fatal(f"{w.kind} client had {w.errors} errors before the kill: {w.last_error}")
            kill_at = time.monotonic()
            for w in writers:
                w.kill_at = kill_at
            master.kill9()
            deadline = kill_at + FAILOVER_DEADLINE_S

            def done():
                return all(w.first_after for w in writers) and all(
                    e.first("+switch-master", "mymaster", kill_at) for e in listeners)
            while not done() and time.monotonic() < deadline:
                for p in replicas + sentinels:
                    p.check()
                time.sleep(0.05)
            finished = done()
            # Let the old master's other replica be re-pointed, so the final state can be checked.
            time.sleep(0.5 if finished else 0)
            for th in writers + listeners:
                th.halt.set()
            for th in writers + listeners:
                th.join(5)

            res = {}

            def since(t0):
                return None if t0 is None else (t0 - kill_at) * 1000

            for w in writers:
                res[f"write_{w.kind}"] = None if w.first_after is None else w.first_after[0] * 1000
            firsts = lambda ch, pre: [e.first(ch, pre, kill_at) for e in listeners]  # noqa: E731
            for key, ch, pre in (("sdown", "+sdown", "master mymaster"),
                                 ("odown", "+odown", "master mymaster"),
                                 ("promoted", "+promoted-slave", ""),
                                 ("switch", "+switch-master", "mymaster")):
                seen = [x for x in firsts(ch, pre) if x is not None]
                res[f"{key}_first"] = since(min(seen)) if seen else None
                res[f"{key}_all"] = since(max(seen)) if len(seen) == len(listeners) else None
            addrs = set()
            for p in sp:
                try:
                    a = client(p).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
                    addrs.add((a[0], int(a[1])))
                except (redis.RedisError, OSError) as e:
                    addrs.add(repr(e))
            wrote = {w.first_after[1] for w in writers if w.first_after}
            problems = []
            if not finished:
                problems.append(f"not complete {FAILOVER_DEADLINE_S:.0f} s after the kill")
            if len(addrs) != 1 or not addrs <= {(HOST, p) for p in dp[1:]}:
                problems.append(f"sentinels answer GET-MASTER-ADDR-BY-NAME {sorted(map(str, addrs))}")
            elif wrote and wrote != addrs:
                problems.append(f"clients wrote to {sorted(wrote)}, sentinels name {sorted(addrs)}")
            for e in listeners:
                if e.error:
                    problems.append(f"event stream of sentinel {e.port} broke: {e.error}")
            res["problems"] = problems
            res["new_master"] = sorted(map(str, addrs))
            res["client_errors"] = {w.kind: dict(w.error_kinds) for w in writers}
            res["events"] = {e.port: [(round((tt - kill_at) * 1000), ch, data)
                                      for tt, ch, data in e.events] for e in listeners}
            self.trials[arm].append(res)
            show = ", ".join(f"{k} {v:.0f}" for k, v in res.items()
                             if isinstance(v, float))
            log(f"failover {t} ({arm}): ms after kill: {show}; new master {res['new_master']}"
                + (f"; PROBLEMS: {problems}" if problems else ""))
            if problems:
                self.keep_evidence(arm, t, d, res)
        finally:
            for th in writers + listeners:
                th.halt.set()
            r.stop(sentinels + data)

    def keep_evidence(self, arm, t, d, res):
        note = f"{arm} failover {t}: " + "; ".join(res["problems"])
        where = None
        if self.evidence:
            where = os.path.join(self.evidence, f"failover-{t}-{arm}")
            shutil.copytree(d, where, dirs_exist_ok=True)
            with open(os.path.join(where, "events.txt"), "w") as f:
                for port, evs in res["events"].items():
                    for ms, ch, data in evs:
                        f.write(f"{port} +{ms} ms {ch} {data}\n")
            note += f" (logs, configs and events kept in {where})"
        self.failures.append(note)
        log(note)
        for port, evs in res["events"].items():
            log(f"  events of sentinel {port} (ms after kill): "
                + "; ".join(f"{ms} {ch} {data}" for ms, ch, data in evs))

    # ----- resource use -----

    def masters_ready(self, port, n):
        ms = client(port).execute_command("SENTINEL", "MASTERS")
        ms = [pairs(m) for m in ms]
        return len(ms) == n and all(
            m.get("flags") == "master" and m.get("role-reported") == "master"
            and 0 <= int(m.get("last-ok-ping-reply", 10**9)) < DOWN_AFTER_MS for m in ms)

    @staticmethod
    def cpu_ticks(pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # Fields after "(comm)" start at 3 (state): utime is field 14, stime 15.
        return int(fields[11]) + int(fields[12])

    @staticmethod
    def cpu_ns(pid):
        """Run time of the live threads on the scheduler's clock: finer than the ticks of
        /proc/<pid>/stat, but a thread that exits during the window takes its time with it."""
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total

    @staticmethod
    def status_kb(pid, key):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise Fatal(f"no {key} in /proc/{pid}/status")

    def resource_run(self, arm, ports, sport):
        n = len(ports)
        d = os.path.join(self.work, f"res-{n}-{arm}")
        s = self.runner.sentinel(arm, sport, d, [(f"m{i}", p, 1) for i, p in enumerate(ports)])
        try:
            wait_until(f"{arm} sentinel to see {n} masters up", lambda: self.masters_ready(sport, n),
                       60, [s])
            ev = Events(sport)
            ev.start()
            time.sleep(WARMUP_S)
            s.check()
            t0, c0, n0 = time.monotonic(), self.cpu_ticks(s.pid), self.cpu_ns(s.pid)
            rss_max = 0
            while time.monotonic() < t0 + WINDOW_S:
                time.sleep(min(1.0, max(0.0, t0 + WINDOW_S - time.monotonic())))
                s.check()
                rss_max = max(rss_max, self.status_kb(s.pid, "VmRSS"))
            t1, c1, n1 = time.monotonic(), self.cpu_ticks(s.pid), self.cpu_ns(s.pid)
            rss, hwm = self.status_kb(s.pid, "VmRSS"), self.status_kb(s.pid, "VmHWM")
            ev.halt.set()
            ev.join(5)
            up = self.masters_ready(sport, n)
            res = dict(cpu_s=(c1 - c0) / CLK_TCK * WINDOW_S / (t1 - t0),
                       sched_ms=(n1 - n0) / 1e6 * WINDOW_S / (t1 - t0), rss_mib=rss / 1024,
                       rss_max_mib=rss_max / 1024, hwm_mib=hwm / 1024, events=len(ev.events),
                       all_up=up, threads=self.status_kb(s.pid, "Threads"))
            self.resources[(arm, n)] = res
            log(f"resources, {n} master(s), {arm}: {res}")
            if not up or ev.events:
                note = (f"{arm} sentinel monitoring {n} master(s) (all alive): "
                        f"{len(ev.events)} events during the window"
                        + ("" if up else ", not every master flagged plain 'master' at the end")
                        + (": " + "; ".join(f"{ch} {data}" for _, ch, data in ev.events[:10])
                           if ev.events else ""))
                self.failures.append(note)
                log(note)
        finally:
            self.runner.stop([s])

    # ----- all -----

    def run(self):
        for t in range(2 * TRIALS):
            # ours, redis, redis, ours, ...: each arm as often first as second.
            arm = ARMS[(t % 2) ^ ((t // 2) % 2)]
            log(f"failover {t + 1}/{2 * TRIALS}: {arm} sentinels...")
            self.failover_trial(arm, t)
        one = [RES_DATA + 60]
        many = [RES_DATA + i for i in range(MASTERS)]
        nodes = [self.runner.redis_server(p, os.path.join(self.work, f"res-node{p}"))
                 for p in one + many]
        try:
            for ports, order in ((one, ARMS), (many, ARMS[::-1])):
                for arm in order:
                    log(f"resources: {arm} sentinel monitoring {len(ports)} master(s), "
                        f"{WARMUP_S:.0f} s warm-up, {WINDOW_S:.0f} s measured...")
                    self.resource_run(arm, ports, RES_SENT + (0 if ports is one else 2)
                                      + ARMS.index(arm))
        finally:
            self.runner.stop(nodes)

    def table(self):
        out = ["| metric | ours | redis | ratio ours/redis |", "|---|---:|---:|---:|"]

        def row(label, ours, theirs, cell):
            ratio = f"{statistics.median(ours) / statistics.median(theirs):.2f}" \
                if ours and theirs and statistics.median(theirs) > 0 else "n/a"
            out.append(f"| {label} | {cell(ours)} | {cell(theirs)} | {ratio} |")

        def col(arm, key):
            return [x[key] for x in self.trials[arm] if x.get(key) is not None]

        for key, label in (
                ("write_redis-py", "failover: kill to first write on the new master, redis-py "
                                   "`master_for`, ms"),
                ("write_addr", "failover: kill to first write on the new master, "
                               "GET-MASTER-ADDR-BY-NAME loop, ms"),
                ("sdown_first", "failover: kill to first `+sdown` (master), ms"),
                ("odown_first", "failover: kill to first `+odown`, ms"),
                ("promoted_first", "failover: kill to `+promoted-slave`, ms"),
                ("switch_first", "failover: kill to first `+switch-master`, ms"),
                ("switch_all", "failover: kill to `+switch-master` on all 3 sentinels, ms")):
            row(label, col("ours", key), col("redis", key), median_cell)
        done = {arm: sum(1 for x in self.trials[arm] if not x["problems"]) for arm in ARMS}
        out.append(f"| failovers completed cleanly | {done['ours']}/{len(self.trials['ours'])} "
                   f"| {done['redis']}/{len(self.trials['redis'])} |  |")
        for n in sorted({k[1] for k in self.resources}):
            o, r = self.resources.get(("ours", n)), self.resources.get(("redis", n))
            label = f"{n} master{'s' if n > 1 else ''}"
            for key, what, fmt in (("cpu_s", f"CPU seconds (utime+stime) in {WINDOW_S:.0f} s",
                                    "{:.2f}"),
                                   ("sched_ms", f"CPU ms in {WINDOW_S:.0f} s, scheduler clock "
                                    "(threads' schedstat)", "{:.1f}"),
                                   ("rss_mib", "VmRSS MiB at the end", "{:.1f}"),
                                   ("hwm_mib", "VmHWM MiB", "{:.1f}")):
                row(f"one sentinel, {label}: {what}", [o[key]] if o else [], [r[key]] if r else [],
                    lambda v, fmt=fmt: fmt.format(v[0]) if v else "n/a")
        out.append("")
        out.append(f"Failover rows: median (min–max) of {TRIALS} failovers per arm, each on a fresh "
                   "group (redis-server master and 2 replicas, 3 sentinels of one kind, quorum 2, "
                   f"down-after-milliseconds {DOWN_AFTER_MS}, failover-timeout "
                   f"{FAILOVER_TIMEOUT_MS}), master killed with SIGKILL while both clients write "
                   f"every {PACE_S * 1000:.0f} ms; event times are when a PSUBSCRIBE * client of "
                   "each sentinel received them. Resource rows: one run each, "
                   f"{WARMUP_S:.0f} s after the sentinel saw every master up, over {WINDOW_S:.0f} s; "
                   f"the masters are redis-server with no replicas; CPU seconds come in ticks of "
                   f"1/{CLK_TCK} s, so the schedstat row is the finer one. Threads: "
                   + ", ".join(f"{arm} {n} master{'s' if n > 1 else ''}: {r['threads']}"
                               for (arm, n), r in sorted(self.resources.items())) + ".")
        out.append("")
        for arm in ARMS:
            per = ", ".join(
                "/".join("—" if x.get(k) is None else f"{x[k]:.0f}"
                         for k in ("write_redis-py", "write_addr", "switch_all"))
                for x in self.trials[arm])
            out.append(f"Per failover, {arm} (redis-py / addr loop / all switched, ms): {per}.  ")
        if self.failures:
            out.append("")
            out.append("Problems seen:")
            out.extend(f"- {f}" for f in self.failures)
        return "\n".join(out) + "\n"


def main():
    work, out = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(work)
    try:
        bench.run()
        with open(out, "w") as f:
            f.write(bench.table())
    except Fatal as e:
        log(f"failed: {e}")
        return 1
    finally:
        bench.runner.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
