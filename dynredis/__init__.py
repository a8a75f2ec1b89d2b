"""dynredis: a Dynamo-style key-value cluster that speaks the Redis protocol."""

from . import native

# Before any other submodule is imported: run the compiled modules only if they were
# built from exactly the sources present (see native.py).
native.choose()
