"""Check TLS servers against Mozilla's "intermediate" profile with sslyze's Python API.

Run by the Python of ``.venv-sslyze`` (sslyze 6.3.1 pins ``cryptography<47``, trustproof uses a
newer one, so they cannot share a virtualenv; ``scripts/bootstrap.sh`` builds it from
``requirements-sslyze.lock``), never imported by the test suite:

    .venv-sslyze/bin/python tests/integration/sslyze_mozilla.py CA_FILE HOST:PORT [HOST:PORT ...]

Only the scan commands the checker needs are run, and only against the loopback addresses
given. Prints one JSON object: ``{"HOST:PORT": {"compliant": bool, "issues": {...}}}``, with
``"error"`` instead of issues when a scan could not complete.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

from sslyze import (
    CertificateInfoExtraArgument,
    ScanCommandsExtraArguments,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
)
from sslyze.mozilla_tls_profile.tls_config_checker import (
    SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
    MozillaTlsConfiguration,
    ServerNotCompliantWithTlsConfiguration,
    ServerScanResultIncomplete,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    ca_file = Path(argv[1])
    extra = ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca_file)
    )
    requests = []
    for target in argv[2:]:
        host, _, port = target.rpartition(":")
        if not ipaddress.ip_address(host).is_loopback:  # the network rule: loopback only
            print(f"refusing to scan {host}: loopback addresses only", file=sys.stderr)
            return 2
        requests.append(
            ServerScanRequest(
                server_location=ServerNetworkLocation(
                    hostname=host, port=int(port), ip_address=host
                ),
                scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
                scan_commands_extra_arguments=extra,
            )
        )
    scanner = Scanner()
    scanner.queue_scans(requests)
    profile = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
    verdicts: dict[str, dict[str, object]] = {}
    for result in scanner.get_results():
        key = f"{result.server_location.hostname}:{result.server_location.port}"
        try:
            check_server_against_tls_configuration(result, profile)
        except ServerNotCompliantWithTlsConfiguration as exc:
            verdicts[key] = {"compliant": False, "issues": dict(exc.issues)}
        except ServerScanResultIncomplete as exc:
            why = result.connectivity_error_trace
            detail = "".join(why.format()) if why is not None else ""
            verdicts[key] = {"compliant": False, "error": f"{exc} {detail}".strip()}
        else:
            verdicts[key] = {"compliant": True, "issues": {}}
    print(json.dumps(verdicts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
