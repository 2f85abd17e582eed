"""Interoperability with a real non-Python client: SWAMP's own Perl RPC::XML (issue 9, finding 11).

Debian's ``librpc-xml-perl`` (installed by scripts/setup-system.sh) launches
a viewer against a real ``swampd serve``, gets it until READY, sees a fault
for a bad argument, sends one request deflated (as RPC::XML compresses
large requests) and stops the viewer.
"""
from __future__ import annotations

import subprocess

from support.daemon import wait_for

SCRIPT = r"""
use strict;
use warnings;
use RPC::XML;
use RPC::XML::Client;

my ($url, $project) = @ARGV;
my $client = RPC::XML::Client->new($url);

sub call {
    my $r = $client->send_request(@_);
    die "transport error: $r\n" unless ref $r;
    return $r;
}

my $r = call('agentMonitor.launchViewer', RPC::XML::struct->new(projectid => $project, viewer => 'CodeDX'));
die 'launch fault: ' . $r->string . "\n" if $r->is_fault;
printf "launch %s %d %d\n", $r->value->{state_name}, $r->value->{epoch}, $r->value->{launched} ? 1 : 0;

for (1 .. 240) {
    $r = call('agentMonitor.getViewer', $project, 'CodeDX');
    last if $r->value->{state} == 2;
    select(undef, undef, undef, 0.25);
}
printf "get %s %s\n", $r->value->{state_name}, $r->value->{url};

$r = call('agentMonitor.getViewer', "bad'project", 'CodeDX');
printf "fault %d\n", $r->is_fault ? $r->code : 0;

$client->compress_requests(1);
$client->compress_thresh(1024);
$r = call('agentMonitor.getViewer', 'x' x 6000, 'CodeDX');
printf "deflated fault %d\n", $r->is_fault ? $r->code : 0;
$client->compress_requests(0);

$r = call('agentMonitor.stopViewer', $project, 'CodeDX');
die 'stop fault: ' . $r->string . "\n" if $r->is_fault;
printf "stop %s\n", $r->value->{state_name};
"""


def test_perl_rpc_xml_client_launches_gets_and_stops_a_viewer(daemon, tmp_path):
    script = tmp_path / "client.pl"
    script.write_text(SCRIPT)
    out = subprocess.run(["perl", str(script), f"{daemon.url}RPC2", "perl-proj"], capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "launch LAUNCHING 1 1"
    state, url = lines[1].split()[1:]
    assert state == "READY" and url.startswith("http://127.0.0.1:")
    assert lines[2:] == ["fault 1", "deflated fault 1", "stop TERMINATING"]
    wait_for(lambda: daemon.api.getViewer("perl-proj", "CodeDX")["state"] == -7, 30, what="TERMINATED")
    assert "Traceback" not in daemon.log()
