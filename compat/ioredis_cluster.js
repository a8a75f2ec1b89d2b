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
  } catch (err) {
    out.ok = false;
    out.errors.push(String(err && err.stack ? err.stack : err));
  } finally {
    cluster.disconnect();
  }
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
}

main();
