#!/usr/bin/env python3
"""Runs one sample's `run` script and checks its printed summary.

    check_sample.py SAMPLE SOURCE_DIR BUILD_DIR

SAMPLE is sftp-csv-import, dropbox-xml or webhook-to-slack. The script's
exit status 3 (something it needs is missing) becomes 77, ctest's skip.
Prints "ok - ..." or "not ok - ..." per check; exits 1 if any failed.
Python 3 standard library only.
"""

import re
import subprocess
import sys

SKIP = 77

# Per sample: the lines (regular expressions, each must match one line of
# the summary) that the round the script drives must produce.
EXPECT = {
    "sftp-csv-import": [
        ("3 files dropped", r"^sftp-csv-import: 3 \*\.csv files dropped in inbox/"),
        ("orders-0314.csv posted",
         r"^  orders-0314\.csv: succeeded, 3 rows parsed, 3 posted \(\d attempts?\)$"),
        ("orders-0315.csv posted",
         r"^  orders-0315\.csv: succeeded, 2 rows parsed, 2 posted \(\d attempts?\)$"),
        ("orders-0316.csv failed after its retries",
         r"^  orders-0316\.csv: failed, post failed after 3 attempts: HTTP 503 "),
        ("2 files in .done/, 1 in .error/, readme.txt left alone",
         r"^files: 2 in \.done/ \(orders-0314\.csv orders-0315\.csv\), 1 in \.error/ "
         r"\(orders-0316\.csv\), left in inbox/: readme\.txt$"),
        ("the API received 5 rows of 2 files; 1 passing 503 and 3 for the failed file",
         r"^import API: 5 rows received in 2 imports \(orders-0314\.csv 3, "
         r"orders-0315\.csv 2\); 6 posts, 4 answered 503$"),
        ("a retry absorbed the passing 503", r"^  orders-031[45]\.csv: .*\(2 attempts\)$"),
        ("executions", r"^executions: 2 succeeded, 1 failed$"),
    ],
    "dropbox-xml": [
        ("3 files put", r"^dropbox-xml: 3 \*\.xml purchase orders put in Dropbox /Orders/inbox"),
        ("PO-20417 posted",
         r"^  PO-20417\.xml \(rev \w+\): succeeded, order PO-20417 with 2 lines, total 353\.4, "
         r"posted to the ERP \(\d attempts?\)$"),
        ("PO-20418 posted",
         r"^  PO-20418\.xml \(rev \w+\): succeeded, order PO-20418 with 1 lines, total 390, "
         r"posted to the ERP \(\d attempts?\)$"),
        ("a retry absorbed the passing 503", r"^  PO-2041[78]\.xml .*\(2 attempts\)$"),
        ("PO-20419 is not well-formed",
         r"^  PO-20419\.xml \(rev \w+\): failed, to_json failed: xml: "),
        ("moved by the trigger's disposition",
         r"^files: 2 in \.processed/ \(PO-20417\.xml PO-20418\.xml\), 1 in \.failed/ "
         r"\(PO-20419\.xml\), left in /Orders/inbox: $"),
        ("the ERP got both orders with the stored token",
         r"^ERP: 2 orders received \(PO-20417 2 lines, PO-20418 1 lines\); 3 posts, "
         r"1 answered 503, 0 refused$"),
        ("executions", r"^executions: 2 succeeded, 1 failed$"),
    ],
    "webhook-to-slack": [
        ("the signed event ran",
         r'^  signed order event SO-48213: HTTP 200 \{"orderId":"SO-48213","channel":"C00000001"'),
        ("a wrong signature is refused",
         r'^  same event, wrong signature: HTTP 401 \{"error":"signature mismatch"\}$'),
        ("the event without updates failed",
         r'^  signed event SO-48214 without updates: HTTP 500 \{"error":"jq: error: order '
         r'SO-48214: the event has no updates".*"status":"failed"\}$'),
        ("executions", r"^executions: 2 \(1 failed, 1 succeeded\)$"),
        ("the order message in #general",
         r"^  #general \(C00000001\): Order SO-48213: status paid → shipped, carrier - → "
         r"DHL Express, tracking - → JD014600003828$"),
        ("the alert in #random",
         r"^  #random \(C00000002\): .*order-events-failing failed: shop-eu flow "
         r"order-events at step format failed "),
    ],
}


def main():
    sample, source, build = sys.argv[1:4]
    p = subprocess.run(["%s/samples/%s/run" % (source, sample),
                        "--build-dir", build],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=100)
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    print("# " + out.replace("\n", "\n# "))
    if p.returncode == 3:
        print("SKIP: " + err.strip().replace("\n", " "))
        return SKIP
    failed = 0
    if p.returncode != 0:
        print("not ok - the run script exited with %d: %s"
              % (p.returncode, err[-2000:]))
        failed += 1
    lines = out.splitlines()
    for what, rx in EXPECT[sample]:
        if any(re.search(rx, line) for line in lines):
            print("ok - " + what)
        else:
            print("not ok - %s: no line matches %s" % (what, rx))
            failed += 1
    print("%d checks, %d failed" % (len(EXPECT[sample]) + 1, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
