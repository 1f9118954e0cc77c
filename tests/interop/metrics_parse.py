"""Parses an OpenMetrics exposition (stdin) with prometheus-client's own parser,
as Prometheus would, and prints every sample as "NAME{LABELS} VALUE", sorted;
exits 1 if it does not parse.
"""

import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as err:  # the parser raises ValueError and friends
        print(f"unparsable: {err}", file=sys.stderr)
        return 1
    lines = []
    for family in families:
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            lines.append(f"{sample.name}{{{labels}}} {sample.value}")
    print("\n".join(sorted(lines)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
