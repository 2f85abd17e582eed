"""The AgentMonitor's HTTP/XML-RPC transport: one event loop, two small worker pools.

Why not a thread per connection (``socketserver.ThreadingMixIn``): a local
user with a thousand idle connections then owns a thousand threads and every
file descriptor, the accept loop spins on ``EMFILE``, and an execute node's
report cannot get in (issue 9).  Here one thread (``loop``) owns every
socket: it accepts, reads request heads and bodies without blocking, under a
total deadline per request, and feeds bodies to an incremental XML-RPC
parser as they arrive, so a body is never held whole.  Only a complete,
parsed call reaches a worker thread; reports from execute nodes
(``viewerStatus``, ``viewerSnapshot``) go to a pool of their own, so client
calls queueing up never keep a report waiting.  Idle connections cost a file
descriptor and a few hundred bytes, never a thread; at the connection cap the
one idle the longest is closed to make room, so a newcomer always gets in.

Modules, one job each:

- ``httpwire``   request heads (strict) and responses — pure
- ``xmlrpcwire`` incremental methodCall parsing with value checks — pure
- ``smallcalls`` small calls in xmlrpc.client's own layout, read without expat — pure
- ``responsewire`` methodResponse bodies, the standard library's bytes, fast — pure
- ``bodies``     request body decoding (identity, deflate, gzip) with a cap — pure
- ``limits``     the configured limits and the file-descriptor budget
- ``listeners``  the TCP and Unix-domain listening sockets
- ``connection`` one connection's state: buffers, parser, deadline
- ``loop``       the event loop: accept, evict, read, deadlines, write
- ``workers``    the fixed worker pools
- ``memory``     returning freed memory to the system after large bodies
"""
