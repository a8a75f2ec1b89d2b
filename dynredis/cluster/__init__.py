"""The Redis face's cluster-wide features, built on the core's messages and placement.

keyscan.py  SCAN, KEYS, DBSIZE, RANDOMKEY and INFO keyspace over the whole keyspace (or
            the partitions this node owns), with Redis' cursor
ports.py    which port each member serves cluster-aware clients on (CLUSTER SLOTS ...)

Both are pure, as the core is: they queue messages through `Node.send`, register their
message kinds with `Node.register` (messages.KINDS lists them), and report through
`Node.done`.
"""
