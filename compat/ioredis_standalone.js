// ioredis (a plain `Redis` client) against one dynredis node: strings, keys and expiry,
// counters, pipelines, MULTI/EXEC, scanStream, connection commands, the versioned API.
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
