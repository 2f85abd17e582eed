"""The one in-process double of an HTCondor schedd and collector.

It is only as useful as it is honest, so it leans on the real bindings for
everything they can decide without a daemon:

* ``submit`` takes only a real ``htcondor2.Submit``, serialises it exactly
  as ``htcondor2.Schedd.submit`` does (``key = value`` lines plus the queue
  statement) and re-parses that text with ``htcondor2.Submit``, so a value
  that smuggles in a line break has the effect it would have on a real
  schedd.  It then refuses what ``make_job_ad`` refuses for the commands we
  use (unknown universe, vm without ``vm_type``/``vm_memory``/``vm_disk``,
  docker without an image, a job without an executable, ``+attr``/``MY.``
  values and policy expressions that are not ClassAd expressions) and stores
  the job ad the real submit would produce for the attributes we rely on.
* Constraints are parsed and evaluated with ``classad2`` against those ads;
  an unparsable constraint is refused.
* Status codes, hold (``HoldReason``/``HoldReasonCode``), remove (X state
  for a running job with graceful removal, then history), ``RemoveX``,
  ``PeriodicRemove``, ``PeriodicHold``, ``AllowedExecuteDuration`` and
  ``AllowedJobDuration`` policy, history, and the bindings' quirk of
  dropping a plain-string ``reason`` are modelled.

What a real schedd (25.0) showed that the double now does too
(``tests/test_htcondor_pool.py`` checks each on a pool, ``tests/test_condor_double.py``
on the double):

* a user's remove or hold reason is stored as ``<reason> (by user <user>)``,
  ``<user>`` being who acted (the job's owner, or ``condor`` for root);
  ``reason=None`` stores ``Python-initiated action (by user <user>)``; a
  plain-string reason is dropped: no ``RemoveReason`` at all (a hold gets
  ``HoldReason = ""``); a user's hold is ``HoldReasonCode`` 1 with the
  tuple's code as ``HoldReasonSubCode``; ``RemoveX`` replaces ``RemoveReason``;
* a remove or release of a held job moves ``HoldReason*`` to ``LastHoldReason*``;
* history: a completed job has ``ExitCode`` and ``CompletionDate`` and no
  ``RemoveReason``; a removed one has neither ``ExitCode`` nor
  ``CompletionDate``, and ``ExitBySignal`` (with ``ExitSignal``) when it was
  killed on its way out;
* policy holds: ``periodic_hold`` is code 3 (``periodic_hold_reason`` and
  ``periodic_hold_subcode`` when given, else "The job attribute PeriodicHold
  expression '<expr>' evaluated to TRUE"), ``allowed_execute_duration`` 47
  and ``allowed_job_duration`` 46 ("The job exceeded allowed execute
  duration of 00:05");
* ``JobRunCount`` counts a start at once; ``NumJobStarts`` only with the
  shadow's next queue update (``SHADOW_QUEUE_UPDATE_INTERVAL``, 900 s by default);
* a schedd that restarts comes back on a new port: a handle from
  ``locate()`` made before keeps failing (as an ``htcondor2.Schedd`` does)
  and must be located again;
* the collector refuses ``UPDATE_AD_GENERIC`` from a user without DAEMON
  authorization (``allow_daemon``) with "Failed to advertise to collector."
  while it answers queries; a collector that is down fails the same
  advertise and fails queries too.

Pool-side events (a job starts, is held by the system, completes, finishes
shutting down, the schedd restarts) are test controls: ``start``, ``hold``,
``complete``, ``vacated``, ``advance``, ``restart``.  ``down = True`` makes
every call fail as a dead daemon's would (``HTCondorException``); ``hang``
makes calls block.
"""
from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any, Callable, Iterable

import classad2
import htcondor2

IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5
UNIVERSE_CODES = {"vanilla": 5, "docker": 5, "container": 5, "vm": 13, "scheduler": 7, "local": 12}
#: Submit commands whose values are ClassAd expressions in the job ad.
EXPRESSION_COMMANDS = {
    "requirements": "Requirements",
    "periodic_remove": "PeriodicRemove",
    "periodic_hold": "PeriodicHold",
    "periodic_hold_reason": "PeriodicHoldReason",
    "periodic_hold_subcode": "PeriodicHoldSubCode",
    "periodic_release": "PeriodicRelease",
    "on_exit_remove": "OnExitRemove",
    "leave_in_queue": "LeaveJobInQueue",
    "rank": "Rank",
}
#: Submit commands with integer values and the attribute each becomes.
INTEGER_COMMANDS = {
    "request_memory": "RequestMemory",
    "request_cpus": "RequestCpus",
    "priority": "JobPrio",
    "job_max_vacate_time": "JobMaxVacateTime",
    "allowed_execute_duration": "AllowedExecuteDuration",
    "allowed_job_duration": "AllowedJobDuration",
    "vm_memory": "JobVMMemory",
    "vm_vcpus": "JobVM_VCPUS",
}
#: Submit commands with string values and the attribute each becomes.
STRING_COMMANDS = {
    "initialdir": "Iwd",
    "transfer_input_files": "TransferInput",
    "transfer_output_files": "TransferOutput",
    "should_transfer_files": "ShouldTransferFiles",
    "when_to_transfer_output": "WhenToTransferOutput",
    "output": "Out",
    "error": "Err",
    "log": "UserLog",
    "batch_name": "JobBatchName",
    "vm_type": "JobVMType",
    "vm_disk": "VMPARAM_vm_Disk",
    "vm_networking_type": "JobVMNetworkingType",
    "docker_image": "DockerImage",
    "docker_network_type": "DockerNetworkType",
    "accounting_group": "AcctGroup",
    "accounting_group_user": "AcctGroupUser",
}
BOOLEAN_COMMANDS = {
    "vm_networking": "JobVMNetworking",
    "vm_no_output_vm": "VMPARAM_No_Output_VM",
    "want_graceful_removal": "WantGracefulRemoval",
    "transfer_executable": "TransferExecutable",
}
MACRO_RE = re.compile(r"(?<!\$)\$\((ClusterId|Cluster|ProcId|Process)\)", re.IGNORECASE)
#: What the bindings send when ``reason`` is None.
DEFAULT_ACTION_REASON = "Python-initiated action"
CLASSAD_LIFETIME = 900
#: Hold codes of the schedd's own policies and of a user's hold.
HOLD_USER_REQUEST, HOLD_JOB_POLICY, HOLD_JOB_DURATION, HOLD_EXECUTE_DURATION = 1, 3, 46, 47


def format_time_short(seconds: int) -> str:
    """HTCondor's short duration ("00:05", "20:00:00", "3+00:00:00"), as hold reasons show it."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}+{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def _refuse(why: str) -> htcondor2.HTCondorException:
    # The schedd's make_job_ad failure surfaces as "Failed to create job ad";
    # the reason is added so a failing test says what was wrong.
    return htcondor2.HTCondorException(f"Failed to create job ad: {why}")


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "t", "y", "1"):
        return True
    if lowered in ("false", "no", "f", "n", "0", ""):
        return False
    raise _refuse(f"{value!r} is not a boolean")


def _expression(name: str, value: str) -> classad2.ExprTree:
    try:
        return classad2.ExprTree(value)
    except classad2.ClassAdException:
        raise _refuse(f"{name} = {value!r} is not a ClassAd expression") from None


class SubmitResultDouble:
    def __init__(self, cluster: int, first_proc: int, num_procs: int, cluster_ad: classad2.ClassAd) -> None:
        self._cluster, self._first, self._num, self._ad = cluster, first_proc, num_procs, cluster_ad

    def cluster(self) -> int:
        return self._cluster

    def first_proc(self) -> int:
        return self._first

    def num_procs(self) -> int:
        return self._num

    def clusterad(self) -> classad2.ClassAd:
        return self._ad


class ScheddDouble:
    """A schedd: the methods swampd calls, with the real signatures, plus pool-side controls."""

    def __init__(self, clock: Callable[[], float] | None = None, name: str = "schedd.double",
                 owner: str = "swampd", user: str | None = None) -> None:
        self.now = 1_700_000_000.0
        self.clock = clock or (lambda: self.now)
        self.name = name
        #: Who owns submitted jobs, and who acts on them (``condor`` for root and the pool's tools).
        self.owner = owner
        self.user = user or owner
        #: The schedd's command port; a restart picks another one.
        self.port = 9620
        self.jobs: dict[tuple[int, int], classad2.ClassAd] = {}
        self.history_ads: list[classad2.ClassAd] = []   # newest first, as condor_history returns
        self.next_cluster = 1
        self.calls: Counter[str] = Counter()
        #: (action name, job spec, reason text kept) of every act, in order.
        self.actions: list[tuple[str, str, str | None]] = []
        self.down = False
        self.hang: threading.Event | None = None
        self._policies_at: int | None = None
        #: SHADOW_QUEUE_UPDATE_INTERVAL: when a running job's shadow next updates the queue.
        self.shadow_update_interval = 900
        self._shadow_updates: dict[tuple[int, int], int] = {}
        self._lock = threading.RLock()

    # -- availability --------------------------------------------------------
    @property
    def address(self) -> str:
        return f"<127.0.0.1:{self.port}?addrs=127.0.0.1-{self.port}&alias=double>"

    def _enter(self, method: str) -> None:
        self.calls[method] += 1
        if self.hang is not None:
            self.hang.wait()
        if self.down:
            self._unreachable(method, self.port)

    @staticmethod
    def _unreachable(method: str, port: int) -> None:
        """What each call raises when nothing answers at the address it dials (25.0, observed)."""
        address = f"<127.0.0.1:{port}?addrs=127.0.0.1-{port}&alias=double>"
        if method == "submit":
            raise htcondor2.HTCondorException(f"Failed to connect to schedd, errmsg=CEDAR:6001:Failed to connect "
                                              f"to {address}")
        if method == "act":
            raise htcondor2.HTCondorException("Error when performing action on the schedd.")
        if method == "history":
            raise htcondor2.HTCondorException(f"Failed to connect to {address}")
        raise htcondor2.HTCondorException(f"Failed to fetch ads from schedd, errmsg=CEDAR:6001:Failed to connect "
                                          f"to {address}")

    # -- locating and restarting ------------------------------------------------
    def locate(self) -> "ScheddHandle":
        """What ``htcondor2.Schedd()`` gives: a client bound to the schedd's address now."""
        self.calls["locate"] += 1
        if self.down:
            raise htcondor2.HTCondorException("Unable to locate local daemon.")
        return ScheddHandle(self, self.port)

    def restart(self) -> None:
        """The schedd stops and starts again: its queue survives (job_queue.log), its port does not
        (no shared port): handles located before keep failing."""
        self.port += 1
        self.down = False

    # -- submit --------------------------------------------------------------
    def submit(self, description: Any, count: int = 0, spool: bool = False, itemdata: Any = None,
               queue: str | None = None) -> SubmitResultDouble:
        if not isinstance(description, htcondor2.Submit):
            raise TypeError("description must be an htcondor2.Submit object")
        if queue is not None and count:
            raise ValueError("queue and count/itemdata are mutually exclusive")
        if itemdata is not None or queue is not None or spool:
            raise NotImplementedError("the double models plain submits only (no itemdata, queue or spool)")
        self._enter("submit")
        # Exactly what Schedd.submit sends: key = value lines, then the queue statement.
        text = "".join(f"{key} = {value}\n" for key, value in description.items())
        text += "\nqueue " + description.getQArgs() + "\n"
        sent = htcondor2.Submit(text)
        if count == 0:
            qargs = sent.getQArgs().strip()
            if qargs and not qargs.isdigit():
                raise NotImplementedError(f"the double does not model queue {qargs!r}")
            count = int(qargs or 1)
        with self._lock:
            cluster = self.next_cluster
            ads = [self._job_ad(sent, cluster, proc) for proc in range(count)]  # refuses before queueing
            self.next_cluster += 1
            for proc, ad in enumerate(ads):
                self.jobs[(cluster, proc)] = ad
        return SubmitResultDouble(cluster, 0, count, ads[0])

    def _job_ad(self, sub: htcondor2.Submit, cluster: int, proc: int) -> classad2.ClassAd:
        commands = {key.lower(): key for key in sub.keys()}

        def value(name: str, default: str = "") -> str:
            key = commands.get(name)
            if key is None:
                return default
            return MACRO_RE.sub(lambda m: str(cluster if m[1].lower().startswith("cluster") else proc), sub[key])

        universe = value("universe", "vanilla").strip().lower() or "vanilla"
        if universe not in UNIVERSE_CODES:
            raise _refuse(f"I don't know about the '{universe}' universe")
        now = int(self.clock())
        ad = classad2.ClassAd({
            "ClusterId": cluster, "ProcId": proc, "JobStatus": IDLE, "QDate": now,
            "EnteredCurrentStatus": now, "Owner": self.owner, "NumJobStarts": 0, "JobRunCount": 0,
            "GlobalJobId": f"{self.name}#{cluster}.{proc}#{now}",
            "JobUniverse": UNIVERSE_CODES[universe],
        })
        executable = value("executable")
        if universe == "vm":
            vm_type = value("vm_type").lower()
            if vm_type not in ("kvm", "xen"):
                raise _refuse("'vm_type' must be kvm or xen in the vm universe")
            if not value("vm_memory").strip():
                raise _refuse("'vm_memory' is required in the vm universe")
            if not value("vm_disk").strip():
                raise _refuse(f"'vm_disk' is required for {vm_type}")
        if universe == "docker":
            if not value("docker_image").strip():
                raise _refuse("docker universe jobs need a docker_image")
            ad["WantDocker"] = True
        elif not executable.strip():
            raise _refuse("no 'executable' given")
        if executable:
            ad["Cmd"] = executable
        if "arguments" in commands:
            args = value("arguments").strip()
            if args.startswith('"') != args.endswith('"') or (args.startswith('"') and len(args) < 2):
                raise _refuse(f"arguments {args!r} have unbalanced quotes")
            ad["Arguments"] = args[1:-1] if args.startswith('"') else args
        for command, attr in INTEGER_COMMANDS.items():
            if command in commands:
                text = value(command).strip()
                if not re.fullmatch(r"-?\d+", text):
                    raise _refuse(f"{command} = {text!r} is not an integer")
                ad[attr] = int(text)
        for command, attr in STRING_COMMANDS.items():
            if command in commands:
                ad[attr] = value(command)
        for command, attr in BOOLEAN_COMMANDS.items():
            if command in commands:
                ad[attr] = _boolean(value(command))
        for command, attr in EXPRESSION_COMMANDS.items():
            if command in commands:
                ad[attr] = _expression(command, value(command))
        if "AcctGroup" in ad:
            user = ad.get("AcctGroupUser", self.owner)
            ad["AccountingGroup"] = f"{ad['AcctGroup']}.{user}"
        for key in sub.keys():
            if key.startswith("MY."):
                ad[key[3:]] = _expression(key, value(key.lower()))
        return ad

    # -- query and history ----------------------------------------------------
    @staticmethod
    def _constraint(constraint: Any) -> classad2.ExprTree:
        text = str(constraint) if constraint is not None else "true"
        try:
            return classad2.ExprTree(text if text.strip() else "true")
        except classad2.ClassAdException:
            raise htcondor2.HTCondorException("Parse error in constraint") from None

    @staticmethod
    def _matches(expr: classad2.ExprTree, ad: classad2.ClassAd) -> bool:
        return expr.eval(ad) is True

    @staticmethod
    def _project(ad: classad2.ClassAd, projection: list[str]) -> classad2.ClassAd:
        if not projection:
            return classad2.ClassAd(dict(ad.items()))
        return classad2.ClassAd({name: ad.lookup(name) for name in projection if name in ad})

    def query(self, constraint: Any = "True", projection: list[str] = [], callback: Any = None,
              limit: int = -1, opts: Any = None) -> list[classad2.ClassAd]:
        if not isinstance(projection, list):
            raise TypeError("projection must be a list")
        self._enter("query")
        expr = self._constraint(constraint)
        self._apply_policies()
        with self._lock:
            found = [self._project(ad, projection) for _, ad in sorted(self.jobs.items()) if self._matches(expr, ad)]
        if limit >= 0:
            found = found[:limit]
        if callback is not None:
            found = [r for r in map(callback, found) if r is not None]
        return found

    def history(self, constraint: Any = None, projection: list[str] = [], match: int = -1,
                since: Any = None) -> list[classad2.ClassAd]:
        if constraint is not None and str(constraint).strip():
            try:
                expr = classad2.ExprTree(str(constraint))
            except classad2.ClassAdException:
                raise ValueError("invalid constraint") from None  # as the bindings do, before connecting
        else:
            expr = classad2.ExprTree("true")
        self._enter("history")
        self._apply_policies()
        with self._lock:
            found = [self._project(ad, projection) for ad in self.history_ads if self._matches(expr, ad)]
        return found[:match] if match >= 0 else found

    # -- act -----------------------------------------------------------------
    def act(self, action: Any, job_spec: Any, reason: Any = None) -> classad2.ClassAd:
        if not isinstance(action, htcondor2.JobAction):
            raise TypeError("action must be a JobAction")
        # The bindings' quirk: None -> a default text; (text, code) -> kept; a plain str -> dropped.
        if reason is None:
            text, code = DEFAULT_ACTION_REASON, None
        elif isinstance(reason, tuple):
            text, code = reason
        else:
            text, code = None, None
        targets = self._targets(job_spec)
        self._enter("act")
        self.actions.append((action.name, str(job_spec), text))
        totals = Counter({"TotalSuccess": 0, "TotalNotFound": 0, "TotalBadStatus": 0, "TotalError": 0})
        with self._lock:
            for key in targets:
                ad = self.jobs.get(key)
                if ad is None:
                    totals["TotalNotFound"] += 1
                    continue
                totals[self._act_one(action, key, ad, text, code)] += 1
        result = classad2.ClassAd(dict(totals))
        result["TotalJobAds"] = len(targets)
        result["TotalAlreadyDone"] = 0
        result["TotalPermissionDenied"] = 0
        result["TotalChangedAds"] = totals["TotalSuccess"]
        return result

    def _by_user(self, text: str) -> str:
        """How the schedd stores a reason a user gave (25.0): who acted is appended."""
        return f"{text} (by user {self.user})"

    def _targets(self, job_spec: Any) -> list[tuple[int, int]]:
        specs = job_spec if isinstance(job_spec, list) else [job_spec]
        keys: list[tuple[int, int]] = []
        for spec in specs:
            if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
                keys += [k for k in self.jobs if k[0] == int(spec)]
            elif isinstance(spec, str) and re.fullmatch(r"\d+\.\d+", spec):
                cluster, proc = spec.split(".")
                keys.append((int(cluster), int(proc)))
            else:
                try:
                    expr = classad2.ExprTree(str(spec))
                except classad2.ClassAdException:
                    raise ValueError("The job_spec string must be a clusterID[.procID] "
                                     "or the string form of an ExprTree.") from None
                keys += [k for k, ad in self.jobs.items() if self._matches(expr, ad)]
        return keys

    def _act_one(self, action: htcondor2.JobAction, key: tuple[int, int], ad: classad2.ClassAd,
                 text: str | None, code: Any) -> str:
        status = ad["JobStatus"]
        if action == htcondor2.JobAction.Remove:
            if status == REMOVED:
                return "TotalBadStatus"
            if text is not None:
                ad["RemoveReason"] = self._by_user(text)
            if status == HELD:
                self._forget_hold(ad)
            graceful = status == RUNNING
            self._set_status(ad, REMOVED)
            if not graceful:
                self._leave_queue(key)
            return "TotalSuccess"
        if action == htcondor2.JobAction.RemoveX:
            if status != REMOVED:
                return "TotalBadStatus"
            if text is not None:
                ad["RemoveReason"] = self._by_user(text)
            self._leave_queue(key, exit_signal=9 if ad.get("JobCurrentStartDate") is not None else None)
            return "TotalSuccess"
        if action == htcondor2.JobAction.Hold:
            if status in (HELD, REMOVED, COMPLETED):
                return "TotalBadStatus"
            self._hold(ad, self._by_user(text) if text is not None else "", HOLD_USER_REQUEST,
                       int(code) if code is not None else 0)
            return "TotalSuccess"
        if action == htcondor2.JobAction.Release:
            if status != HELD:
                return "TotalBadStatus"
            self._forget_hold(ad)
            if text is not None:
                ad["ReleaseReason"] = self._by_user(text)
            self._set_status(ad, IDLE)
            return "TotalSuccess"
        raise NotImplementedError(f"the double does not model {action!r}")

    @staticmethod
    def _forget_hold(ad: classad2.ClassAd) -> None:
        """A released or removed held job keeps its hold only as LastHoldReason* (25.0, observed)."""
        for name in ("HoldReason", "HoldReasonCode", "HoldReasonSubCode"):
            if name in ad:
                ad[f"Last{name}"] = ad[name]
                del ad[name]

    # -- pool-side controls ----------------------------------------------------
    def _set_status(self, ad: classad2.ClassAd, status: int) -> None:
        ad["LastJobStatus"] = ad["JobStatus"]
        ad["JobStatus"] = status
        ad["EnteredCurrentStatus"] = int(self.clock())

    def _hold(self, ad: classad2.ClassAd, reason: str, code: int, subcode: int = 0) -> None:
        self._set_status(ad, HELD)
        ad["HoldReason"] = reason
        ad["HoldReasonCode"] = code
        ad["HoldReasonSubCode"] = subcode

    def _leave_queue(self, key: tuple[int, int], exit_signal: int | None = None) -> None:
        """Into the history: a completed job with its CompletionDate (and ExitCode), a removed one
        with neither, killed by ``exit_signal`` on its way out or not."""
        ad = self.jobs.pop(key)
        if ad["JobStatus"] == COMPLETED:
            ad["CompletionDate"] = int(self.clock())
            ad["ExitBySignal"] = False
        else:
            ad["ExitBySignal"] = exit_signal is not None
            if exit_signal is not None:
                ad["ExitSignal"] = int(exit_signal)
        self.history_ads.insert(0, ad)

    def _job(self, ref: str) -> tuple[tuple[int, int], classad2.ClassAd]:
        cluster, proc = (int(part) for part in ref.split("."))
        return (cluster, proc), self.jobs[(cluster, proc)]

    def start(self, ref: str, host: str = "slot1@exec1.example.org") -> None:
        with self._lock:
            key, ad = self._job(ref)
            self._set_status(ad, RUNNING)
            ad["JobCurrentStartDate"] = int(self.clock())
            ad["JobRunCount"] = ad["JobRunCount"] + 1  # the schedd's own count, at once
            # NumJobStarts comes with the shadow's next queue update (observed: 0 for 15 s on a
            # pool with SHADOW_QUEUE_UPDATE_INTERVAL = 10).
            self._shadow_updates[key] = int(self.clock()) + self.shadow_update_interval
            ad["RemoteHost"] = host

    def evict(self, ref: str) -> None:
        """The startd preempts the running job (a higher-priority claim, the machine's owner, a
        drain): back to idle, its start counted, LastVacateTime set, the slot's name moved to
        LastRemoteHost, as the schedd does when a shadow exits with the job to run again."""
        with self._lock:
            _, ad = self._job(ref)
            assert ad["JobStatus"] == RUNNING, "only a running job can be preempted"
            self._set_status(ad, IDLE)
            ad["LastVacateTime"] = int(self.clock())
            ad["LastRemoteHost"] = ad["RemoteHost"]
            del ad["RemoteHost"]

    def hold(self, ref: str, reason: str, code: int, subcode: int = 0) -> None:
        """The system holds the job (a failed transfer, a VMGAHP error, a policy)."""
        with self._lock:
            _, ad = self._job(ref)
            self._hold(ad, reason, code, subcode)

    def complete(self, ref: str, exit_code: int = 0) -> None:
        with self._lock:
            key, ad = self._job(ref)
            self._set_status(ad, COMPLETED)
            ad["ExitCode"] = exit_code
            self._leave_queue(key)

    def vacated(self, ref: str, exit_signal: int | None = None) -> None:
        """A removed (X state) job finished shutting down and leaves the queue: it exited by itself
        (``exit_signal`` None) or was killed by that signal."""
        with self._lock:
            key, ad = self._job(ref)
            assert ad["JobStatus"] == REMOVED, "only a removed job can finish leaving"
            self._leave_queue(key, exit_signal)

    def advance(self, seconds: float) -> None:
        """Move the clock (when the double owns it) and apply the periodic policies."""
        self.now += seconds
        self._apply_policies()

    def _apply_policies(self) -> None:
        """What the schedd's periodic policy evaluation would have done by now.

        Like the schedd's own periodic evaluation, this runs when time has
        passed, not on every query.
        """
        now = int(self.clock())
        with self._lock:
            if now == self._policies_at:
                return
            self._policies_at = now
            for key, due in list(self._shadow_updates.items()):
                if now >= due:
                    del self._shadow_updates[key]
                    if key in self.jobs:
                        self.jobs[key]["NumJobStarts"] = self.jobs[key]["NumJobStarts"] + 1
            for key, ad in list(self.jobs.items()):
                status = ad["JobStatus"]
                if status == REMOVED and ad.get("WantGracefulRemoval") is not True:
                    self._leave_queue(key, exit_signal=9)
                    continue
                if status == REMOVED and now - ad["EnteredCurrentStatus"] > ad.get("JobMaxVacateTime", 600):
                    self._leave_queue(key, exit_signal=9)  # the starter's hard kill after the vacate time
                    continue
                if status == RUNNING and self._duration_hold(ad, now):
                    continue
                if status in (IDLE, RUNNING) and "PeriodicHold" in ad and self._policy_true(ad, "PeriodicHold", now):
                    reason = self._policy_value(ad, "PeriodicHoldReason", now)
                    subcode = self._policy_value(ad, "PeriodicHoldSubCode", now)
                    self._hold(ad, reason if isinstance(reason, str) and reason else
                               f"The job attribute PeriodicHold expression '{ad.lookup('PeriodicHold')}' "
                               "evaluated to TRUE", HOLD_JOB_POLICY, subcode if isinstance(subcode, int) else 0)
                    continue
                if "PeriodicRemove" in ad and status in (IDLE, RUNNING, HELD) and \
                        self._policy_true(ad, "PeriodicRemove", now):
                    ad["RemoveReason"] = (f"The job attribute PeriodicRemove expression "
                                          f"'{ad.lookup('PeriodicRemove')}' evaluated to TRUE")
                    if status == HELD:
                        self._forget_hold(ad)
                    self._set_status(ad, REMOVED)
                    if status != RUNNING:
                        self._leave_queue(key)

    def _duration_hold(self, ad: classad2.ClassAd, now: int) -> bool:
        """allowed_execute_duration (47) and allowed_job_duration (46) hold a running job."""
        for attribute, code, what in (("AllowedExecuteDuration", HOLD_EXECUTE_DURATION, "execute"),
                                      ("AllowedJobDuration", HOLD_JOB_DURATION, "job")):
            limit = ad.get(attribute)
            if isinstance(limit, int) and now - ad["JobCurrentStartDate"] > limit:
                self._hold(ad, f"The job exceeded allowed {what} duration of {format_time_short(limit)}", code)
                return True
        return False

    @staticmethod
    def _policy_value(ad: classad2.ClassAd, attribute: str, now: int) -> Any:
        """A policy attribute evaluated in the job's ad, time() being the schedd's clock (the double's)."""
        if attribute not in ad:
            return None
        text = re.sub(r"\btime\(\)", str(now), str(ad.lookup(attribute)))
        return classad2.ExprTree(text).eval(ad)

    def _policy_true(self, ad: classad2.ClassAd, attribute: str, now: int) -> bool:
        return self._policy_value(ad, attribute, now) is True

    # -- conveniences for tests ------------------------------------------------
    def ad(self, ref: str) -> classad2.ClassAd:
        return self._job(ref)[1]

    def jobs_of(self, constraint: str) -> list[classad2.ClassAd]:
        expr = classad2.ExprTree(constraint)
        return [ad for _, ad in sorted(self.jobs.items()) if self._matches(expr, ad)]


class ScheddHandle:
    """What ``htcondor2.Schedd(location)`` is: a client that dials one address.  Once the schedd
    restarted elsewhere every call fails, as the real object's do, until it is located again."""

    def __init__(self, schedd: ScheddDouble, port: int) -> None:
        self._schedd = schedd
        self._port = port
        self._addr = f"<127.0.0.1:{port}?addrs=127.0.0.1-{port}&alias=double>"

    def _dial(self, method: str) -> ScheddDouble:
        if self._port != self._schedd.port:  # nothing listens where this handle dials
            self._schedd.calls[method] += 1
            self._schedd._unreachable(method, self._port)
        return self._schedd

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self._dial("query").query(*args, **kwargs)

    def history(self, *args: Any, **kwargs: Any) -> Any:
        return self._dial("history").history(*args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        return self._dial("submit").submit(*args, **kwargs)

    def act(self, *args: Any, **kwargs: Any) -> Any:
        return self._dial("act").act(*args, **kwargs)


class CollectorDouble:
    """A collector holding generic ads until their lifetime passes.

    ``UPDATE_AD_GENERIC`` (and ``INVALIDATE_ADS_GENERIC``) need DAEMON
    authorization at the collector.  With the packaged security only
    ``condor`` (root's tools and the daemons) has it; ``allow_daemon`` is the
    collector's ``ALLOW_DAEMON`` (``COLLECTOR.ALLOW_DAEMON = $(ALLOW_DAEMON)
    swampd@$(UID_DOMAIN)`` adds swampd's user), ``user`` who the client
    authenticates as.  A refused update raises what the bindings raise and
    leaves a line in ``denied``, as the CollectorLog does; queries still work.
    """

    def __init__(self, clock: Callable[[], float] | None = None, user: str = "swampd",
                 allow_daemon: Iterable[str] = ("condor",)) -> None:
        self.now = 1_700_000_000.0
        self.clock = clock or (lambda: self.now)
        self.ads: dict[tuple[str, str], tuple[classad2.ClassAd, float]] = {}
        self.calls: Counter[str] = Counter()
        self.down = False
        self.user = user
        self.allow_daemon = set(allow_daemon)
        #: The CollectorLog's PERMISSION DENIED lines.
        self.denied: list[str] = []
        self._lock = threading.Lock()

    def advertise(self, ad_list: Iterable[Any], command: str = "UPDATE_AD_GENERIC", use_tcp: bool = True) -> None:
        ad_list = list(ad_list)
        if not all(isinstance(ad, classad2.ClassAd) for ad in ad_list):
            raise TypeError("ad_list must be a list of classad2.ClassAd")
        if command not in ("UPDATE_AD_GENERIC", "INVALIDATE_ADS_GENERIC"):
            raise NotImplementedError(f"the double models generic ads only, not {command}")
        self.calls["advertise"] += 1
        if self.down:
            raise htcondor2.HTCondorException("Failed to advertise to collector.")
        if self.user not in self.allow_daemon:
            number = 58 if command == "UPDATE_AD_GENERIC" else 59
            self.denied.append(f"PERMISSION DENIED to {self.user}@localhost from host 127.0.0.1 for command "
                               f"{number} ({command}), access level DAEMON: reason: DAEMON authorization policy "
                               "contains no matching ALLOW entry for this request")
            raise htcondor2.HTCondorException("Failed to advertise to collector.")
        now = self.clock()
        with self._lock:
            for ad in ad_list:
                if command == "INVALIDATE_ADS_GENERIC":
                    expr = ad.lookup("Requirements")
                    for key, (stored, _) in list(self.ads.items()):
                        if expr.eval(stored) is True:
                            del self.ads[key]
                    continue
                my_type, name = ad.get("MyType"), ad.get("Name")
                if not isinstance(my_type, str) or not isinstance(name, str):
                    continue  # the collector drops an ad without MyType and Name
                lifetime = ad.get("ClassAdLifetime", CLASSAD_LIFETIME)
                self.ads[(my_type, name)] = (classad2.ClassAd(dict(ad.items())), now + int(lifetime))

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def _live(self) -> list[classad2.ClassAd]:
        now = self.clock()
        with self._lock:
            for key, (_, expires) in list(self.ads.items()):
                if expires <= now:
                    del self.ads[key]
            return [ad for ad, _ in self.ads.values()]

    def query(self, ad_type: Any = None, constraint: str | None = None, projection: list[str] | None = None,
              statistics: str | None = None) -> list[classad2.ClassAd]:
        self.calls["query"] += 1
        if self.down:
            raise htcondor2.HTCondorException("Failed communication with collector.")
        try:
            expr = classad2.ExprTree(constraint if constraint and constraint.strip() else "true")
        except classad2.ClassAdException:
            raise ValueError("Invalid constraint.") from None
        wanted = {None, htcondor2.AdType.Any, htcondor2.AdType.Generic}
        if ad_type not in wanted:
            return []
        found = [ad for ad in self._live() if expr.eval(ad) is True]
        if projection:
            found = [classad2.ClassAd({n: ad.lookup(n) for n in projection if n in ad}) for ad in found]
        return found

    def viewer(self, name: str) -> classad2.ClassAd | None:
        """The live generic ad called ``name``."""
        found = self.query(htcondor2.AdType.Generic, f"Name == {classad2.quote(name)}")
        return found[0] if found else None
