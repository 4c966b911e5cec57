"""The managed-application notification webhook: receiver, registry of instances, and the signal it gives.

`schema` (pure) parses one event; `registry` keeps events and the instances they describe in the
journal's SQLite file (own tables); `receiver` is the aiohttp server; `confirm` reads an app back by id;
`signals` lets a running rollout wake up when an event about one of its apps arrives.
"""
