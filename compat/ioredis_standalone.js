// ioredis (a plain `Redis` client) against one dynredis node: strings, keys and expiry,
// counters, pipelines, MULTI/EXEC, scanStream, connection commands, the versioned API,
// hashes, sets, sorted sets and lists;
// numbered databases (a URL with a database, the db option, SELECT).
//
// usage: node compat/ioredis_standalone.js HOST PORT [OTHER_PORT]
// Prints one JSON line: {"ok": bool, "families": {family: {"passed": n, "failed": [..]}}}
// and exits 0 when every check passed, 1 otherwise.
"use strict";

const Redis = require("ioredis");

async function main() {
  const [host, portArg, otherArg] = process.argv.slice(2);
  const port = Number(portArg);
  const otherPort = Number(otherArg || portArg);
  const opts = { host, connectTimeout: 5000, maxRetriesPerRequest: 1, retryStrategy: () => null };
  const r = new Redis({ ...opts, port });
  const other = new Redis({ ...opts, port: otherPort });
  const families = {};
  let family = "connection";
  const check = (cond, what, got) => {
    const f = (families[family] = families[family] || { passed: 0, failed: [] });
    if (cond) f.passed++;
    else f.failed.push(got === undefined ? what : `${what}: got ${JSON.stringify(got)}`);
  };
  const eq = (got, want, what) =>
    check(JSON.stringify(got) === JSON.stringify(want), `${what} (want ${JSON.stringify(want)})`, got);
  const rejects = async (promise, pattern, what) => {
    try {
      const v = await promise;
      check(false, `${what}: no error`, v);
    } catch (err) {
      check(pattern.test(String(err && err.message)), `${what}: error ${err && err.message}`);
    }
  };
  const section = async (name, fn) => {
    family = name;
    try {
      await fn();
    } catch (err) {
      check(false, `unexpected exception: ${err && err.stack ? err.stack : err}`);
    }
  };

  await section("connection", async () => {
    eq(await r.ping(), "PONG", "PING");
    eq(await r.echo("hi there"), "hi there", "ECHO");
    eq(await r.client("SETNAME", "ioredis-compat"), "OK", "CLIENT SETNAME");
    eq(await r.client("GETNAME"), "ioredis-compat", "CLIENT GETNAME");
    const info = await r.info("server");
    check(/redis_version:7\./.test(info), "INFO server has redis_version 7.x", info.slice(0, 80));
    eq(r.status, "ready", "client status");
  });

  await section("strings", async () => {
    eq(await r.set("ios:s", "hello"), "OK", "SET");
    eq(await other.get("ios:s"), "hello", "GET through another node");
    eq(await r.set("ios:s", "x", "NX"), null, "SET NX on an existing key");
    eq(await r.set("ios:s", "world", "XX", "GET"), "hello", "SET XX GET");
    eq(await r.append("ios:s", "!"), 6, "APPEND");
    eq(await r.strlen("ios:s"), 6, "STRLEN");
    eq(await r.getrange("ios:s", 0, 2), "wor", "GETRANGE");
    eq(await r.mset({ "ios:m1": "1", "ios:m2": "2" }), "OK", "MSET (object)");
    eq(await r.mget("ios:m1", "ios:m2", "ios:none"), ["1", "2", null], "MGET");
    eq(await r.getdel("ios:m1"), "1", "GETDEL");
    eq(await r.get("ios:m1"), null, "GET after GETDEL");
    const bin = Buffer.from([0, 1, 2, 255, 254, 13, 10, 0]);
    eq(await r.set(Buffer.from("ios:bin\x00"), bin), "OK", "SET binary");
    const back = await other.getBuffer(Buffer.from("ios:bin\x00"));
    check(Buffer.isBuffer(back) && back.equals(bin), "binary value round-trips", back);
    const big = "v".repeat(200000);
    eq(await r.set("ios:big", big), "OK", "SET 200 kB");
    eq((await other.get("ios:big")).length, big.length, "GET 200 kB");
  });

  await section("keys", async () => {
    await r.set("ios:k", "v");
    eq(await r.exists("ios:k", "ios:none"), 1, "EXISTS");
    eq(await r.type("ios:k"), "string", "TYPE");
    eq(await r.expire("ios:k", 100), 1, "EXPIRE");
    const ttl = await other.ttl("ios:k");
    check(ttl > 0 && ttl <= 100, "TTL after EXPIRE 100", ttl);
    const pttl = await r.pttl("ios:k");
    check(pttl > 0 && pttl <= 100000, "PTTL", pttl);
    eq(await r.persist("ios:k"), 1, "PERSIST");
    eq(await r.ttl("ios:k"), -1, "TTL after PERSIST");
    eq(await r.set("ios:px", "v", "PX", 150), "OK", "SET PX 150");
    eq(await r.get("ios:px"), "v", "GET before expiry");
    await new Promise((res) => setTimeout(res, 400));
    eq(await other.get("ios:px"), null, "GET after expiry (other node)");
    eq(await r.exists("ios:px"), 0, "EXISTS after expiry");
    eq(await r.del("ios:k", "ios:none"), 1, "DEL");
    eq(await r.ttl("ios:k"), -2, "TTL of a missing key");
  });

  await section("counters", async () => {
    eq(await r.incr("ios:c"), 1, "INCR");
    eq(await r.incrby("ios:c", 41), 42, "INCRBY");
    eq(await other.decr("ios:c"), 41, "DECR through another node");
    eq(await r.decrby("ios:c", 40), 1, "DECRBY");
    eq(await r.incrbyfloat("ios:f", "1.5"), "1.5", "INCRBYFLOAT");
    await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? r : other).incr("ios:many")));
    eq(await r.get("ios:many"), "200", "200 concurrent INCRs");
    await r.set("ios:word", "abc");
    await rejects(r.incr("ios:word"), /not an integer or out of range/, "INCR of a word");
  });

  await section("pipelines", async () => {
    const p = r.pipeline();
    for (let i = 0; i < 1000; i++) p.set(`ios:p:${i}`, String(i));
    const res = await p.exec();
    check(res.length === 1000 && res.every(([err, v]) => err === null && v === "OK"),
      "1000 pipelined SETs", res.find(([err]) => err));
    const g = other.pipeline();
    for (let i = 0; i < 1000; i++) g.get(`ios:p:${i}`);
    g.incr("ios:word");
    const got = await g.exec();
    check(got.slice(0, 1000).every(([err, v], i) => err === null && v === String(i)),
      "1000 pipelined GETs through another node");
    check(got[1000][0] !== null && /not an integer/.test(got[1000][0].message),
      "an error in a pipeline is that command's only", got[1000]);
    // Auto-pipelining: many commands in one tick share one write.
    const ap = new Redis({ ...opts, port, enableAutoPipelining: true });
    const vals = await Promise.all(Array.from({ length: 300 }, (_, i) => ap.get(`ios:p:${i}`)));
    check(vals.every((v, i) => v === String(i)), "auto-pipelined GETs");
    ap.disconnect();
  });

  await section("transactions", async () => {
    const res = await r.multi().set("ios:t", "1").incr("ios:t").get("ios:t").exec();
    eq(res, [[null, "OK"], [null, 2], [null, "2"]], "MULTI/EXEC");
    const mixed = await r.multi().set("ios:t2", "abc").incr("ios:t2").set("ios:t3", "ok").exec();
    check(mixed[0][1] === "OK" && mixed[1][0] !== null && mixed[2][1] === "OK",
      "a failing command inside EXEC leaves the others applied", mixed);
    eq(await other.get("ios:t3"), "ok", "write inside EXEC visible on another node");
    await rejects(r.multi().set("ios:t4", "1").call("GET").exec(), /EXECABORT|wrong number/,
      "a command refused while queueing aborts EXEC");
    eq(await r.get("ios:t4"), null, "nothing of the aborted transaction ran");
    // WATCH: another client's write through another node aborts EXEC (null).
    const w = new Redis({ ...opts, port });
    eq(await w.watch("ios:w"), "OK", "WATCH");
    await other.set("ios:w", "theirs");
    eq(await w.multi().set("ios:w", "mine").exec(), null, "EXEC aborted by a watched write");
    eq(await r.get("ios:w"), "theirs", "nothing of the aborted EXEC ran");
    eq(await w.watch("ios:w"), "OK", "WATCH again");
    eq(await w.multi().set("ios:w", "mine").exec(), [[null, "OK"]], "EXEC when unchanged");
    eq(await other.get("ios:w"), "mine", "its write seen through another node");
    w.disconnect();
  });

  await section("scan", async () => {
    const keys = Array.from({ length: 400 }, (_, i) => `ios:scan:${i}`);
    const p = r.pipeline();
    keys.forEach((k) => p.set(k, "1"));
    await p.exec();
    const seen = [];
    await new Promise((resolve, reject) => {
      const stream = other.scanStream({ match: "ios:scan:*", count: 50 });
      stream.on("data", (batch) => seen.push(...batch));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    eq(seen.length, keys.length, "scanStream returns every key once");
    eq([...new Set(seen)].sort(), [...keys].sort(), "scanStream returns exactly the keys");
    eq((await r.keys("ios:scan:1?")).sort(),
      Array.from({ length: 10 }, (_, i) => `ios:scan:1${i}`).sort(), "KEYS pattern");
    check((await r.dbsize()) >= keys.length, "DBSIZE counts the cluster's keys");
  });

  await section("versioned", async () => {
    await r.set("ios:v", "base");
    const [ctx, values] = await r.call("GETCTX", "ios:v");
    check(typeof ctx === "string" && ctx.length > 0, "GETCTX gives a context", ctx);
    eq(values, ["base"], "GETCTX values");
    eq(await r.call("SETCTX", "ios:v", ctx, "left"), "OK", "SETCTX");
    eq(await other.call("SETCTX", "ios:v", ctx, "right"), "OK", "SETCTX, same context");
    const [both, siblings] = await other.call("GETCTX", "ios:v");
    eq([...siblings].sort(), ["left", "right"], "concurrent writes are siblings");
    eq(await r.call("SETCTX", "ios:v", both, "merged"), "OK", "SETCTX with the covering context");
    eq((await r.call("GETCTX", "ios:v"))[1], ["merged"], "reconciled");
    await rejects(r.call("SETCTX", "ios:v", "not-a-context", "x"), /context/i, "bad context");
  });

  await section("hashes", async () => {
    eq(await r.hset("ios:h", "f1", "v1", "f2", "v2"), 2, "HSET two fields");
    eq(await r.hset("ios:h", { f3: "3", n: "10" }), 2, "HSET (object)");
    eq(await other.hget("ios:h", "f1"), "v1", "HGET through another node");
    eq(await other.hgetall("ios:h"), { f1: "v1", f2: "v2", f3: "3", n: "10" }, "HGETALL");
    eq(await r.hmget("ios:h", "f1", "none", "f3"), ["v1", null, "3"], "HMGET");
    eq(await r.hsetnx("ios:h", "f1", "x"), 0, "HSETNX on an existing field");
    eq(await r.hincrby("ios:h", "n", 5), 15, "HINCRBY");
    eq(await other.hincrbyfloat("ios:h", "n", "0.5"), "15.5", "HINCRBYFLOAT through another node");
    eq(await r.hlen("ios:h"), 4, "HLEN");
    eq(await r.hexists("ios:h", "f2"), 1, "HEXISTS");
    eq((await r.hkeys("ios:h")).sort(), ["f1", "f2", "f3", "n"], "HKEYS");
    eq(await r.hdel("ios:h", "f1", "none"), 1, "HDEL");
    eq(await other.hget("ios:h", "f1"), null, "HGET after HDEL (other node)");
    eq(await r.type("ios:h"), "hash", "TYPE");
    await rejects(r.get("ios:h"), /WRONGTYPE/, "GET of a hash");
    const seen = [];
    await new Promise((resolve, reject) => {
      const stream = other.hscanStream("ios:h", { count: 2 });
      stream.on("data", (batch) => seen.push(...batch));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    eq(seen.filter((_, i) => i % 2 === 0).sort(), ["f2", "f3", "n"], "hscanStream fields");
  });

  await section("sets", async () => {
    eq(await r.sadd("ios:sa", "x", "y", "z"), 3, "SADD");
    eq(await other.sadd("ios:sa", "x", "w"), 1, "SADD through another node");
    eq(await r.sadd("{ios}:sb", "y", "q"), 2, "SADD");
    eq((await other.smembers("ios:sa")).sort(), ["w", "x", "y", "z"], "SMEMBERS");
    eq(await r.scard("ios:sa"), 4, "SCARD");
    eq(await r.sismember("ios:sa", "x"), 1, "SISMEMBER");
    eq(await r.smismember("ios:sa", "x", "nope"), [1, 0], "SMISMEMBER");
    eq(await r.srem("ios:sa", "x", "nope"), 1, "SREM");
    await r.sadd("{ios}:sc", "y", "z", "k");
    eq((await other.sinter("{ios}:sb", "{ios}:sc")), ["y"], "SINTER");
    eq((await r.sunion("{ios}:sb", "{ios}:sc")).sort(), ["k", "q", "y", "z"], "SUNION");
    eq(await r.smove("{ios}:sb", "{ios}:sc", "q"), 1, "SMOVE");
    eq((await other.smembers("{ios}:sc")).sort(), ["k", "q", "y", "z"], "SMEMBERS after SMOVE");
    const popped = await r.spop("ios:sa");
    check(["w", "y", "z"].includes(popped), "SPOP returns a member", popped);
    eq(await other.scard("ios:sa"), 2, "SCARD after SPOP (other node)");
    eq(await r.type("ios:sa"), "set", "TYPE");
  });

  await section("sorted sets", async () => {
    eq(await r.zadd("ios:z", 1, "a", 2, "b", 3, "c"), 3, "ZADD");
    eq(await other.zadd("ios:z", "XX", "CH", 5, "a"), 1, "ZADD XX CH through another node");
    eq(await r.zincrby("ios:z", 2.5, "b"), "4.5", "ZINCRBY");
    eq(await r.zscore("ios:z", "b"), "4.5", "ZSCORE");
    eq(await other.zrange("ios:z", 0, -1), ["c", "b", "a"], "ZRANGE");
    eq(await r.zrange("ios:z", 0, -1, "WITHSCORES"), ["c", "3", "b", "4.5", "a", "5"],
      "ZRANGE WITHSCORES");
    eq(await r.zrange("ios:z", "(3", "+inf", "BYSCORE", "LIMIT", 0, 1), ["b"],
      "ZRANGE BYSCORE LIMIT");
    eq(await r.zrevrange("ios:z", 0, 0), ["a"], "ZREVRANGE");
    eq(await r.zrank("ios:z", "a"), 2, "ZRANK");
    eq(await r.zcount("ios:z", 4, 5), 2, "ZCOUNT");
    eq(await r.zcard("ios:z"), 3, "ZCARD");
    eq(await r.zpopmin("ios:z"), ["c", "3"], "ZPOPMIN");
    eq(await other.zrem("ios:z", "b", "none"), 1, "ZREM through another node");
    eq(await r.zrange("ios:z", 0, -1, "WITHSCORES"), ["a", "5"], "what is left");
    eq(await r.type("ios:z"), "zset", "TYPE");
  });

  await section("lists", async () => {
    eq(await r.rpush("ios:l", "a", "b", "c"), 3, "RPUSH");
    eq(await other.lpush("ios:l", "z"), 4, "LPUSH through another node");
    eq(await r.lrange("ios:l", 0, -1), ["z", "a", "b", "c"], "LRANGE");
    eq(await r.llen("ios:l"), 4, "LLEN");
    eq(await r.lindex("ios:l", -1), "c", "LINDEX");
    eq(await r.lset("ios:l", 1, "A"), "OK", "LSET");
    eq(await r.linsert("ios:l", "BEFORE", "b", "ab"), 5, "LINSERT");
    eq(await other.lpos("ios:l", "b"), 3, "LPOS through another node");
    eq(await r.lpop("ios:l"), "z", "LPOP");
    eq(await r.rpop("ios:l", 2), ["c", "b"], "RPOP count");
    eq(await r.lmove("ios:l", "{ios}:l2", "LEFT", "RIGHT"), "A", "LMOVE");
    eq(await other.lrange("ios:l", 0, -1), ["ab"], "the source after LMOVE");
    // A job queue's shape: producers push through one node, a consumer pops through
    // another, every job once.
    const jobs = Array.from({ length: 100 }, (_, i) => `job${i}`);
    for (const j of jobs) await r.rpush("ios:queue", j);
    const got = [];
    for (;;) {
      const j = await other.lpop("ios:queue");
      if (j === null) break;
      got.push(j);
    }
    eq(got, jobs, "100 jobs pushed through one node, popped in order through another");
    eq(await r.type("ios:l"), "list", "TYPE");
  });

  await section("databases", async () => {
    // a URL naming a database (ioredis sends SELECT on connect) and the db option
    const viaUrl = new Redis(`redis://${host}:${port}/3`, { connectTimeout: 5000, maxRetriesPerRequest: 1, retryStrategy: () => null });
    const viaOpt = new Redis({ ...opts, port: otherPort, db: 3 });
    const five = new Redis({ ...opts, port: otherPort, db: 5 });
    try {
      eq(await viaUrl.set("ios:db", "three"), "OK", "SET in db 3 (URL)");
      eq(await viaOpt.get("ios:db"), "three", "GET in db 3 through another node");
      eq(await r.get("ios:db"), null, "db 0 does not see db 3's key");
      eq(await five.get("ios:db"), null, "db 5 does not see db 3's key");
      eq(await viaOpt.hset("ios:dbh", "f", "v"), 1, "HSET in db 3");
      eq(await viaUrl.hget("ios:dbh", "f"), "v", "HGET in db 3");
      eq((await viaUrl.keys("ios:db*")).sort(), ["ios:db", "ios:dbh"], "KEYS in db 3");
      eq(await viaUrl.select(5), "OK", "SELECT 5");
      eq(await viaUrl.get("ios:db"), null, "after SELECT 5");
      eq(await viaOpt.flushdb(), "OK", "FLUSHDB of db 3");
      eq(await viaOpt.dbsize(), 0, "DBSIZE of db 3 after FLUSHDB");
      await rejects(r.select(16), /DB index is out of range/, "SELECT 16");
    } finally {
      viaUrl.disconnect();
      viaOpt.disconnect();
      five.disconnect();
    }
  });

  r.disconnect();
  other.disconnect();
  const ok = Object.values(families).every((f) => f.failed.length === 0);
  console.log(JSON.stringify({ ok, families }));
  process.exit(ok ? 0 : 1);
}

main().catch((err) => {
  console.log(JSON.stringify({ ok: false, families: {}, error: String(err && err.stack) }));
  process.exit(1);
});
