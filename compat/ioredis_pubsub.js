// ioredis pub/sub through different dynredis nodes: a subscriber on each of three nodes
// (channels, patterns, shard channels), publishers through each node, PUBLISH's counts,
// keyspace notifications of a write made through another node.
//
// usage: node compat/ioredis_pubsub.js HOST PORT0 PORT1 PORT2
// Prints one JSON line: {"ok": bool, "failed": [..], "passed": n} and exits 0 when every
// check passed, 1 otherwise.
"use strict";

const Redis = require("ioredis");

async function main() {
  const [host, ...portArgs] = process.argv.slice(2);
  const ports = portArgs.map(Number);
  const opts = { host, connectTimeout: 5000, maxRetriesPerRequest: 1, retryStrategy: () => null };
  const subs = ports.map((port) => new Redis({ ...opts, port }));
  const pubs = ports.map((port) => new Redis({ ...opts, port }));
  const failed = [];
  let passed = 0;
  const eq = (got, want, what) => {
    if (JSON.stringify(got) === JSON.stringify(want)) passed++;
    else failed.push(`${what}: want ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  };
  const got = subs.map(() => []);
  subs.forEach((s, i) => {
    s.on("message", (ch, msg) => got[i].push(["message", ch, msg]));
    s.on("pmessage", (pat, ch, msg) => got[i].push(["pmessage", pat, ch, msg]));
    s.on("smessage", (ch, msg) => got[i].push(["smessage", ch, msg]));
  });
  const until = async (pred, ms = 10000) => {
    const end = Date.now() + ms;
    while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  };
  try {
    eq(await subs[0].subscribe("io.a", "io.b"), 2, "subscribe count");
    eq(await subs[1].psubscribe("io.*"), 1, "psubscribe count");
    eq(await subs[2].subscribe("io.a"), 1, "subscribe count, third node");
    eq(await pubs[2].publish("io.a", "1"), 3, "publish io.a through node 2");
    eq(await pubs[0].publish("io.b", "2"), 2, "publish io.b through node 0");
    eq(await pubs[1].publish("io.c", "3"), 1, "publish io.c through node 1");
    await until(() => got[0].length >= 2 && got[1].length >= 3 && got[2].length >= 1);
    eq(got[0], [["message", "io.a", "1"], ["message", "io.b", "2"]], "node 0 subscriber");
    eq(got[1], [["pmessage", "io.*", "io.a", "1"], ["pmessage", "io.*", "io.b", "2"],
                ["pmessage", "io.*", "io.c", "3"]], "node 1 pattern subscriber");
    eq(got[2], [["message", "io.a", "1"]], "node 2 subscriber");
    eq(await pubs[0].pubsub("NUMSUB", "io.a", "io.b"), ["io.a", 2, "io.b", 1], "PUBSUB NUMSUB");
    eq(await pubs[1].pubsub("NUMPAT"), 1, "PUBSUB NUMPAT");
    eq(await subs[0].unsubscribe("io.a"), 1, "unsubscribe count");
    eq(await pubs[1].publish("io.a", "4"), 2, "publish after an unsubscribe");
    // shard channels
    eq(await subs[2].ssubscribe("io.s"), 1, "ssubscribe count");
    eq(await pubs[0].spublish("io.s", "5"), 1, "spublish through node 0");
    await until(() => got[2].some((m) => m[0] === "smessage"));
    eq(got[2].filter((m) => m[0] === "smessage"), [["smessage", "io.s", "5"]], "smessage");
    // keyspace notifications of a write made through another node
    const ks = new Redis({ ...opts, port: ports[1] });
    const events = [];
    ks.on("pmessage", (pat, ch, msg) => events.push([ch, msg]));
    await pubs[0].config("SET", "notify-keyspace-events", "E$");
    for (let i = 0; i < 100; i++) {  // the setting reaches every node
      const [, v] = await pubs[2].config("GET", "notify-keyspace-events");
      if (v === "$E") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await ks.psubscribe("__keyevent@0__:*");
    await pubs[2].set("io:key", "v");
    await until(() => events.length >= 1);
    eq(events, [["__keyevent@0__:set", "io:key"]], "keyevent of a SET through another node");
    await pubs[0].config("SET", "notify-keyspace-events", "");
    ks.disconnect();
  } catch (err) {
    failed.push(`unexpected exception: ${err && err.stack ? err.stack : err}`);
  }
  for (const c of [...subs, ...pubs]) c.disconnect();
  console.log(JSON.stringify({ ok: failed.length === 0, failed, passed }));
  process.exit(failed.length === 0 ? 0 : 1);
}

main();
