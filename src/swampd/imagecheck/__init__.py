"""``swampd image check``: run a candidate viewer image through a real launch's path before it goes live.

- ``check``     the steps (prepare, start, events, address, READY, stop, snapshot), their times, PASS/FAIL
- ``receiver``  the AgentMonitor's part: a loopback XML-RPC endpoint for this one launch's reports
"""
