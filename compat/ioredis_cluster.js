// ioredis `Cluster` against a live dynredis cluster: discovery, key routing, fan-out.
//
// usage: node compat/ioredis_cluster.js HOST PORT NKEYS
// Prints one JSON line of findings; exits 0 when every check passed, 1 otherwise.
"use strict";

const { Cluster } = require("ioredis");
const calculateSlot = require("cluster-key-slot");

async function main() {
  const [host, portArg, nArg] = process.argv.slice(2);
  const port = Number(portArg);
  const n = Number(nArg || 200);
  const cluster = new Cluster([{ host, port }], {
    scaleReads: "master",
    redisOptions: { connectTimeout: 5000 },
    clusterRetryStrategy: () => null,
  });
  const out = { ok: true, errors: [] };
  const check = (cond, what) => {
    if (!cond) {
      out.ok = false;
      out.errors.push(what);
    }
  };
  try {
    await new Promise((resolve, reject) => {
      cluster.once("ready", resolve);
      cluster.once("error", reject);
    });
    const masters = cluster.nodes("master");
    out.masters = masters.map((m) => `${m.options.host}:${m.options.port}`).sort();
    out.replicas = cluster.nodes("slave").map((m) => `${m.options.host}:${m.options.port}`).sort();

    const keys = [];
    for (let i = 0; i < n; i++) keys.push(`io:${i}`);
    await Promise.all(keys.map((k, i) => cluster.set(k, String(i))));
    const got = await Promise.all(keys.map((k) => cluster.get(k)));
    check(got.every((v, i) => v === String(i)), "get after set");

    // Routing: each key goes to the master CLUSTER SLOTS names for its slot.
    const slots = await cluster.cluster("SLOTS");
    const owner = new Map();
    for (const [lo, hi, master] of slots) {
      for (let s = lo; s <= hi; s++) owner.set(s, `${master[0]}:${master[1]}`);
    }
    out.covered = owner.size;
    check(owner.size === 16384, "CLUSTER SLOTS covers every slot");
    let misrouted = 0;
    for (const k of keys) {
      const slot = calculateSlot(k);
      const addr = cluster.slots[slot][0]; // ioredis' own choice: its master for the slot
      if (addr !== owner.get(slot)) misrouted++;
    }
    out.misrouted = misrouted;
    check(misrouted === 0, "keys routed to their partition's owner");

    // Fan-out to every master: DBSIZE adds up, SCAN sees each key once.
    const sizes = await Promise.all(masters.map((m) => m.dbsize()));
    out.dbsize = sizes.reduce((a, b) => a + b, 0);
    const seen = [];
    for (const m of masters) {
      let cursor = "0";
      do {
        const [next, batch] = await m.scan(cursor, "MATCH", "io:*", "COUNT", 50);
        seen.push(...batch);
        cursor = next;
      } while (cursor !== "0");
    }
    out.scanned = seen.length;
    out.scanned_unique = new Set(seen).size;
    check(out.scanned === n && out.scanned_unique === n, "scan over masters: every key once");
    const del = await Promise.all(keys.map((k) => cluster.del(k)));
    check(del.every((d) => d === 1), "del");
    out.families = await collections(cluster);
    for (const f of Object.values(out.families)) check(f.failed.length === 0, "collections");
  } catch (err) {
    out.ok = false;
    out.errors.push(String(err && err.stack ? err.stack : err));
  } finally {
    cluster.disconnect();
  }
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
}

// Hashes, sets, sorted sets and lists through `Cluster`: each key goes to its slot's
// master; multi-key commands use keys with one hash tag (one slot).
async function collections(cluster) {
  // Keys of this run only (the script runs more than once against one cluster).
  const run = `ioc${process.pid}x${Date.now().toString(36)}`;
  const k = (name) => `${run}:${name}`; // spread over slots
  const t = (name) => `{${run}}:${name}`; // one slot
  const families = {};
  const eq = (family, got, want, what) => {
    const f = (families[family] = families[family] || { passed: 0, failed: [] });
    if (JSON.stringify(got) === JSON.stringify(want)) f.passed++;
    else f.failed.push(`${what}: want ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  };
  const section = async (family, fn) => {
    try {
      await fn((got, want, what) => eq(family, got, want, what));
    } catch (err) {
      eq(family, String(err && err.stack ? err.stack : err), "no exception", "unexpected exception");
    }
  };
  const n = 50;
  const each = (fn) => Promise.all(Array.from({ length: n }, (_, i) => fn(i)));
  await section("hashes", async (e) => {
    await each((i) => cluster.hset(k(`h:${i}`), { a: i, b: "x" }));
    const all = await each((i) => cluster.hgetall(k(`h:${i}`)));
    e(all.every((h, i) => h.a === String(i) && h.b === "x"), true, `HGETALL of ${n} hashes`);
    e(await cluster.hincrby(k("h:7"), "a", 3), 10, "HINCRBY");
    e(await cluster.hdel(k("h:7"), "b"), 1, "HDEL");
    e(await cluster.hgetall(k("h:7")), { a: "10" }, "HGETALL after HDEL");
  });
  await section("sets", async (e) => {
    await each((i) => cluster.sadd(k(`s:${i}`), "m", `m${i}`));
    const cards = await each((i) => cluster.scard(k(`s:${i}`)));
    e(cards.every((c) => c === 2), true, `SCARD of ${n} sets`);
    await cluster.sadd(t("a"), "x", "y", "z");
    await cluster.sadd(t("b"), "y", "z", "w");
    e((await cluster.sinter(t("a"), t("b"))).sort(), ["y", "z"], "SINTER in one slot");
    e(await cluster.sunionstore(t("u"), t("a"), t("b")), 4, "SUNIONSTORE");
    e(await cluster.smove(t("a"), t("b"), "x"), 1, "SMOVE");
    e((await cluster.smembers(t("b"))).sort(), ["w", "x", "y", "z"], "SMEMBERS");
  });
  await section("sorted sets", async (e) => {
    await each((i) => cluster.zadd(k(`z:${i}`), i, "a", 2 * i, "b"));
    const tops = await each((i) => cluster.zrevrange(k(`z:${i}`), 0, 0));
    e(tops.slice(1).every((top) => top[0] === "b"), true, `ZREVRANGE of ${n} sorted sets`);
    e(await cluster.zincrby(k("z:3"), 10, "a"), "13", "ZINCRBY");
    e(await cluster.zrange(k("z:3"), 0, -1, "WITHSCORES"), ["b", "6", "a", "13"], "ZRANGE WITHSCORES");
    await cluster.zadd(t("z1"), 1, "p", 2, "q");
    await cluster.zadd(t("z2"), 5, "q");
    e(await cluster.zunionstore(t("zu"), 2, t("z1"), t("z2")), 2, "ZUNIONSTORE");
    e(await cluster.zrange(t("zu"), 0, -1, "WITHSCORES"), ["p", "1", "q", "7"], "its result");
  });
  await section("lists", async (e) => {
    await each((i) => cluster.rpush(k(`l:${i}`), "a", `b${i}`));
    const lens = await each((i) => cluster.llen(k(`l:${i}`)));
    e(lens.every((l) => l === 2), true, `LLEN of ${n} lists`);
    e(await cluster.lpop(k("l:9")), "a", "LPOP");
    e(await cluster.lrange(k("l:9"), 0, -1), ["b9"], "LRANGE");
    await cluster.rpush(t("q"), "1", "2", "3");
    e(await cluster.lmove(t("q"), t("done"), "LEFT", "RIGHT"), "1", "LMOVE in one slot");
    e(await cluster.rpoplpush(t("q"), t("done")), "3", "RPOPLPUSH");
    e(await cluster.lrange(t("done"), 0, -1), ["3", "1"], "the destination");
  });
  return families;
}

main();
