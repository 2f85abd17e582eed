#!/bin/sh
# The assessment machine's run.sh in the tiny test guest (busybox sh): what SWAMP's run.sh and a
# framework leave, without the framework.  It sources run-params.conf from the input disk, writes
# SWAMP's events and its address to the serial ports named there, and writes a fixed result into
# out/: status.out, a SCARF file in parsed_results.tar.gz with its conf, output_files.conf, the logs.
# The SCARF names the package of in/package.conf and lists in/ in build_assess.out, so the test sees
# that the inputs reached the guest.
out=/mnt/out
. /mnt/in/run-params.conf || exit 1
log() { echo "$(date -u '+%Y-%m-%d %H:%M:%S') $*" >> "$out/run.out"; }
log "run.sh (tiny guest) starting as user $SWAMP_USERNAME ($SWAMP_USERID)"
echo "runOut=run.out" >> "$out/output_files.conf"
echo RUNSHSTART > "$SWAMP_EVENT_FILE"
echo 10.0.2.15 > "$IP_ADDR_FILE"
echo WROTEIPADDR > "$SWAMP_EVENT_FILE"
echo BEGINASSESSMENT > "$SWAMP_EVENT_FILE"
echo "buildAssessOut=build_assess.out" >> "$out/output_files.conf"
echo "statusOut=status.out" >> "$out/output_files.conf"
ls -l /mnt/in > "$out/build_assess.out"
package=$(sed -n 's/^package-short-name=//p' /mnt/in/package.conf)
mkdir -p /tmp/parsed_results
cat > /tmp/parsed_results/parsed_results.xml <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<AnalyzerReport tool_name="cppcheck" tool_version="2.10" uuid="00000000-0000-4000-8000-0000000000a1" package_name="$package" package_root_dir="pkg1">
  <BugInstance id="0">
    <BugLocations><Location id="0" primary="true"><SourceFile>pkg1/src/defects.c</SourceFile><StartLine>7</StartLine></Location></BugLocations>
    <CweId>476</CweId><BugGroup>error</BugGroup><BugCode>nullPointer</BugCode>
    <BugMessage>Null pointer dereference: p</BugMessage>
    <BugTrace><BuildId>1</BuildId><AssessmentReportFile>assessment_report1.xml</AssessmentReportFile></BugTrace>
  </BugInstance>
</AnalyzerReport>
EOF
echo "weaknesses: 1" > /tmp/parsed_results/weaknesses.txt
tar -C /tmp -czf "$out/parsed_results.tar.gz" parsed_results
printf 'parsed-results-archive=parsed_results.tar.gz\nparsed-results-dir=parsed_results\nparsed-results-file=parsed_results.xml\nweaknesses=1\n' > "$out/parsed_results.conf"
printf 'NOTE: begin\nPASS: assess\nPASS: parse-results (weaknesses: 1)\nPASS: all\nNOTE: end\n' > "$out/status.out"
log "run.sh done"
echo ENDASSESSMENT > "$SWAMP_EVENT_FILE"
